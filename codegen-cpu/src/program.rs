//! The prepared program: [`CpuProgram`], its [`Step`]s and each step's [`StepKind`] (the
//! kernel and its precomputed plan), with their printing. Plain data: it imports the
//! kernels' plan types, the fusion, schedule and memory descriptions and the run state,
//! never the planner (`plan`, which builds it) nor the executor (`exec`, which runs it).

use crate::buffer::RunCache;
use crate::fusion::{FusionGroup, FusionNote};
use crate::kernels::dot::DotPlan;
use crate::kernels::index::GatherPlan;
use crate::kernels::reduce::ReducePlan;
use crate::kernels::scan::ScanPlan;
use crate::kernels::shared_matrix::SharedMatrixPlan;
use crate::memory::{Alloc, StepMemory};
use crate::schedule::KernelSchedule;
use crate::state::RunState;
use crate::strided::StridedCopy;
use std::fmt;
use tenferro_ir::{BinaryOp, CmpOp, DType, ExtensionOp, ReduceOp, Tensor, TensorType, UnaryOp};

/// A function compiled for the CPU: steps in execution order over value slots.
#[derive(Clone, Debug)]
pub struct CpuProgram {
    pub(crate) name: String,
    pub(crate) num_slots: usize,
    /// Slot and type of each parameter, in order.
    pub(crate) params: Vec<(usize, TensorType)>,
    pub(crate) steps: Vec<Step>,
    /// Slots of the outputs, in order.
    pub(crate) outputs: Vec<usize>,
    /// Parameters never used by a step nor an output (freed before the first step).
    pub(crate) unused_params: Vec<usize>,
    pub(crate) groups: Vec<FusionGroup>,
    pub(crate) notes: Vec<FusionNote>,
    pub(crate) graph: Vec<GraphNode>,
    pub(crate) peak_bytes: usize,
    pub(crate) fused: bool,
    /// Shape of every slot's value.
    pub(crate) shapes: Vec<Vec<usize>>,
    /// Released buffers and the slot table, kept between runs.
    pub(crate) cache: RunCache<RunState>,
    /// Steps that hand work to the backend's threads (see [`Step::uses_threads`]).
    pub(crate) threaded_steps: usize,
}

/// Extension ops whose operands hold fewer elements than this run on the calling thread.
pub(crate) const INLINE_EXTENSION_ELEMENTS: usize = 1 << 16;

/// One instruction of the source function, for the DOT picture.
#[derive(Clone, Debug)]
pub(crate) struct GraphNode {
    pub op: String,
    pub args: Vec<usize>,
    pub results: Vec<usize>,
    pub types: Vec<TensorType>,
    /// Fusion group holding it; `None` for single steps and views.
    pub group: Option<usize>,
    /// Inlined as a load into its consumers.
    pub view: bool,
}

impl CpuProgram {
    /// The steps, in execution order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Types of the parameters, in order.
    pub fn param_types(&self) -> Vec<TensorType> {
        self.params.iter().map(|(_, t)| t.clone()).collect()
    }

    /// The fusion groups, in execution order (empty when fusion is off).
    pub fn fusion_groups(&self) -> &[FusionGroup] {
        &self.groups
    }

    /// The partitioner's decision for every instruction, with reasons.
    pub fn fusion_notes(&self) -> &[FusionNote] {
        &self.notes
    }

    /// The schedules of the fused steps, in execution order.
    pub fn schedules(&self) -> Vec<&KernelSchedule> {
        self.steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Fused(k) => Some(&**k),
                _ => None,
            })
            .collect()
    }

    /// Peak bytes of the buffers this program allocates while it runs (see
    /// [`crate::memory`]): live values plus buffers kept for reuse, parameters, constants
    /// and kernel scratch excluded.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// `true` when the program was prepared with fusion.
    pub fn is_fused(&self) -> bool {
        self.fused
    }

    /// Bytes of the released intermediate buffers this program keeps for its next run
    /// (at most the buffers of one run's intermediates; zero before the first run).
    pub fn cached_bytes(&self) -> usize {
        self.cache.with(|c| c.pool.bytes()).unwrap_or(0)
    }
}

impl fmt::Display for CpuProgram {
    /// One line per step: `%r = kernel(op) %a, %b ; alloc … ; free %a`, each fused step
    /// followed by its schedule, then the peak bytes of the memory plan.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cpu_program @{} {{", self.name)?;
        for g in &self.groups {
            let members: Vec<String> = g
                .insts
                .iter()
                .map(|&k| format!("%{}", self.graph[k].results.first().copied().unwrap_or(0)))
                .collect();
            writeln!(
                f,
                "  ; group g{}: {} elements, members {}",
                g.id,
                g.numel,
                members.join(" ")
            )?;
        }
        for s in &self.steps {
            let res: Vec<String> = s.results.iter().map(|r| format!("%{r}")).collect();
            let args: Vec<String> = s.args.iter().map(|r| format!("%{r}")).collect();
            write!(
                f,
                "  {} = {}({}) {}",
                res.join(", "),
                s.kernel_name(),
                s.op_name,
                args.join(", ")
            )?;
            let allocs: Vec<String> = s
                .memory
                .allocs
                .iter()
                .zip(&s.results)
                .filter_map(|(a, r)| match a {
                    Alloc::Fresh if matches!(s.kind, StepKind::Fused(_)) => {
                        Some(format!("%{r} fresh"))
                    }
                    Alloc::Pool => Some(format!("%{r} reused")),
                    Alloc::InPlace(i) => Some(format!("%{r} in place of %{}", s.args[*i])),
                    _ => None,
                })
                .collect();
            if !allocs.is_empty() {
                write!(f, " ; alloc {}", allocs.join(", "))?;
            }
            if !s.free_after.is_empty() {
                let fr: Vec<String> = s
                    .free_after
                    .iter()
                    .map(|r| {
                        if s.memory.recycle.contains(r) {
                            format!("%{r} (kept for reuse)")
                        } else {
                            format!("%{r}")
                        }
                    })
                    .collect();
                write!(f, " ; free {}", fr.join(", "))?;
            }
            writeln!(f)?;
            let sched = match &s.kind {
                StepKind::Fused(k) => Some(&**k),
                StepKind::SharedMatrix(p) => Some(&p.sched),
                _ => None,
            };
            if let Some(k) = sched {
                for line in k.to_string().lines() {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        let outs: Vec<String> = self.outputs.iter().map(|r| format!("%{r}")).collect();
        writeln!(f, "  return {}", outs.join(", "))?;
        writeln!(f, "  ; peak bytes {}", self.peak_bytes)?;
        write!(f, "}}")
    }
}

/// One instruction of a [`CpuProgram`]: a kernel with its plan, operand and result slots.
#[derive(Clone, Debug)]
pub struct Step {
    pub(crate) op_name: String,
    pub(crate) kind: StepKind,
    pub(crate) args: Vec<usize>,
    pub(crate) results: Vec<usize>,
    pub(crate) result_types: Vec<TensorType>,
    /// Slots whose last use is this step.
    pub(crate) free_after: Vec<usize>,
    pub(crate) memory: StepMemory,
}

impl Step {
    /// Whether the step hands its work to the backend's threads when it has more than
    /// one: a fused kernel of several blocks, a product worth threads, a large copy or a
    /// large extension op. `shapes` holds every slot's shape.
    pub(crate) fn uses_threads(&self, shapes: &[Vec<usize>]) -> bool {
        match &self.kind {
            StepKind::Fused(s) => s.num_blocks() > 1,
            StepKind::Dot(p) => p.worth_threads(),
            StepKind::SharedMatrix(p) => p.blocks() > 1,
            StepKind::Copy(c) => c.parts(2) > 1,
            StepKind::Extension(_) => {
                let numel: usize = self
                    .args
                    .iter()
                    .map(|&a| shapes.get(a).map_or(0, |s| s.iter().product()))
                    .sum();
                numel >= INLINE_EXTENSION_ELEMENTS
            }
            _ => false,
        }
    }

    /// Name of the IR op this step runs (`add`, `dot_general`, `linalg.cholesky`, ...).
    pub fn op_name(&self) -> &str {
        &self.op_name
    }

    /// Name of the kernel chosen for it (`elementwise`, `strided_copy`, `gemm`, ...).
    pub fn kernel_name(&self) -> &'static str {
        self.kind.kernel_name()
    }

    /// Slots (value indices) whose buffers are released after this step.
    pub fn frees(&self) -> &[usize] {
        &self.free_after
    }

    /// Result types.
    pub fn result_types(&self) -> &[TensorType] {
        &self.result_types
    }

    /// Where each result's buffer comes from.
    pub fn allocs(&self) -> &[Alloc] {
        &self.memory.allocs
    }

    /// The schedule of a fused step.
    pub fn schedule(&self) -> Option<&KernelSchedule> {
        match &self.kind {
            StepKind::Fused(k) => Some(k),
            _ => None,
        }
    }
}

/// The kernel of a step and everything it needs that is known before run time.
#[derive(Clone, Debug)]
pub(crate) enum StepKind {
    /// A fusion group run by its schedule.
    Fused(Box<KernelSchedule>),
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CmpOp),
    Select,
    Convert(DType),
    Reduce(ReduceOp, ReducePlan),
    Dot(Box<DotPlan>),
    /// `Aᵀ·w(A·X)`: two products sharing a matrix and the elementwise group between
    /// them, in one pass over the matrix (operands: `A`, `X`, the group's other inputs).
    SharedMatrix(Box<SharedMatrixPlan>),
    /// Transpose, broadcast_in_dim and slice: one strided copy into a fresh buffer.
    Copy(StridedCopy),
    /// Same buffer, new shape.
    Reshape(Vec<usize>),
    /// Fill with the padding value, then copy the operand into the interior.
    Pad(StridedCopy),
    /// One copy per operand into its place along the axis.
    Concatenate(Vec<StridedCopy>),
    Gather(GatherPlan),
    ScatterAdd(GatherPlan),
    /// Values along a dimension of extent `n`, repeated `pre` (faster axes) and `post`
    /// (slower axes) times.
    Iota {
        pre: usize,
        n: usize,
        post: usize,
    },
    Constant(Tensor),
    Extension(ExtensionOp),
    /// Inclusive scan along an axis.
    Scan(ReduceOp, ScanPlan),
    /// Stable sort permutation along an axis; `true` for descending.
    Argsort(bool, ScanPlan),
}

impl StepKind {
    fn kernel_name(&self) -> &'static str {
        match self {
            StepKind::Unary(_)
            | StepKind::Binary(_)
            | StepKind::Compare(_)
            | StepKind::Select
            | StepKind::Convert(_) => "elementwise",
            StepKind::Reduce(..) => "reduce",
            StepKind::Fused(_) => "fused",
            StepKind::Dot(d) => d.kernel_name(),
            StepKind::SharedMatrix(_) => "shared_matrix",
            StepKind::Copy(_) => "strided_copy",
            StepKind::Reshape(_) => "reshape",
            StepKind::Pad(_) => "pad",
            StepKind::Concatenate(_) => "concatenate",
            StepKind::Gather(_) => "gather",
            StepKind::ScatterAdd(_) => "scatter_add",
            StepKind::Iota { .. } => "iota",
            StepKind::Constant(_) => "constant",
            StepKind::Extension(_) => "extension",
            StepKind::Scan(..) => "scan",
            StepKind::Argsort(..) => "argsort",
        }
    }
}
