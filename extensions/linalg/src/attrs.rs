//! The typed attributes of the linalg primitives: one struct per primitive, and
//! [`LinalgOp`] over all of them. Each struct's `encode` is the one place its attributes
//! are written into an [`ExtensionOp`] and its `decode` the one place they are read back;
//! every key is written, and decoding reports a missing key, a key the primitive does not
//! take, a value of another kind or out of range as an [`AttrError`] naming the op and the
//! key (never a default). Kernels, AD and batching rules, eager mode and the StableHLO
//! export read attributes only through these. Also the primitives' names. Imports no
//! module of this crate; `ops` (which re-exports the names) and every reader import it.

use tenferro_ir::{Attr, AttrError, AttrReader, ExtensionOp, TensorType};

/// `linalg.cholesky`.
pub const CHOLESKY: &str = "linalg.cholesky";
/// `linalg.triangular_solve`.
pub const TRIANGULAR_SOLVE: &str = "linalg.triangular_solve";
/// `linalg.solve`.
pub const SOLVE: &str = "linalg.solve";
/// `linalg.lu`.
pub const LU: &str = "linalg.lu";
/// `linalg.qr`.
pub const QR: &str = "linalg.qr";
/// `linalg.svd`.
pub const SVD: &str = "linalg.svd";
/// `linalg.eigh`.
pub const EIGH: &str = "linalg.eigh";

/// `linalg.eig`: general (non-Hermitian) eigendecomposition, complex results.
pub const EIG: &str = "linalg.eig";
/// `linalg.eig_distinct`: identity on a vector of eigenvalues whose kernel fails when two
/// of them coincide (used by the `eig` derivative rule before dividing by their gaps).
pub const EIG_DISTINCT: &str = "linalg.eig_distinct";
/// `linalg.full_piv_perm`: the row and column permutations of LU with complete pivoting
/// of a square matrix, and their parity (piecewise constant, so zero derivative).
pub const FULL_PIV_PERM: &str = "linalg.full_piv_perm";

/// Names of all linalg primitives.
pub const PRIMITIVES: [&str; 10] = [
    CHOLESKY,
    TRIANGULAR_SOLVE,
    SOLVE,
    LU,
    QR,
    SVD,
    EIGH,
    EIG,
    EIG_DISTINCT,
    FULL_PIV_PERM,
];

/// A decoded attribute set, its [`AttrError`] as an AD error (for the AD rules).
#[cfg(feature = "autodiff")]
pub(crate) fn decoded<T>(r: Result<T, AttrError>) -> tenferro_ad::Result<T> {
    r.map_err(|e| tenferro_ad::AdError::Runtime(e.into()))
}

/// Reads a `derivative_eps` attribute: finite and `>= 0`.
fn derivative_eps(r: &mut AttrReader<'_>) -> Result<f64, AttrError> {
    let eps = r.float("derivative_eps")?;
    if eps >= 0.0 && eps.is_finite() {
        Ok(eps)
    } else {
        Err(r.bad_value(
            "derivative_eps",
            format!("must be finite and >= 0, got {eps}"),
        ))
    }
}

/// Decodes `op` as the primitive `name` with `read` reading its attributes, then rejects
/// any attribute `read` did not read.
fn decode_with<T>(
    op: &ExtensionOp,
    name: &str,
    read: impl FnOnce(&mut AttrReader<'_>) -> Result<T, AttrError>,
) -> Result<T, AttrError> {
    let mut r = op.read_attrs();
    r.expect_op(name)?;
    let value = read(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// `linalg.cholesky`: no attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cholesky;

impl Cholesky {
    /// The op with result types `results`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp::new(CHOLESKY, results)
    }

    /// Reads `op` (a `linalg.cholesky` without attributes).
    pub fn decode(op: &ExtensionOp) -> Result<Cholesky, AttrError> {
        decode_with(op, CHOLESKY, |_| Ok(Cholesky))
    }
}

/// Which triangular system `linalg.triangular_solve` solves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TriangularSolve {
    /// The matrix is lower (else upper) triangular; the other triangle is not read.
    pub lower: bool,
    /// Solve `op(A) X = B` (else `X op(A) = B`).
    pub left: bool,
    /// `op(A)` is the conjugate transpose of `A` (else `A`).
    pub adjoint: bool,
    /// The diagonal of `A` is taken to be ones (and not read).
    pub unit_diagonal: bool,
}

impl Default for TriangularSolve {
    /// Lower, left, no adjoint, general diagonal: `L X = B`.
    fn default() -> Self {
        TriangularSolve {
            lower: true,
            left: true,
            adjoint: false,
            unit_diagonal: false,
        }
    }
}

impl TriangularSolve {
    /// The op with result types `results`: attributes `lower`, `left`, `adjoint`,
    /// `unit_diagonal`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp::new(TRIANGULAR_SOLVE, results)
            .with_attr("lower", Attr::Bool(self.lower))
            .with_attr("left", Attr::Bool(self.left))
            .with_attr("adjoint", Attr::Bool(self.adjoint))
            .with_attr("unit_diagonal", Attr::Bool(self.unit_diagonal))
    }

    /// Reads the attributes of a `linalg.triangular_solve`.
    pub fn decode(op: &ExtensionOp) -> Result<TriangularSolve, AttrError> {
        decode_with(op, TRIANGULAR_SOLVE, |r| {
            Ok(TriangularSolve {
                lower: r.bool("lower")?,
                left: r.bool("left")?,
                adjoint: r.bool("adjoint")?,
                unit_diagonal: r.bool("unit_diagonal")?,
            })
        })
    }
}

/// `linalg.solve`: `op(A) X = B`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Solve {
    /// `op(A)` is the conjugate transpose of `A` (else `A`).
    pub adjoint: bool,
}

impl Solve {
    /// The op with result types `results`: attribute `adjoint`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp::new(SOLVE, results).with_attr("adjoint", Attr::Bool(self.adjoint))
    }

    /// Reads the attributes of a `linalg.solve`.
    pub fn decode(op: &ExtensionOp) -> Result<Solve, AttrError> {
        decode_with(op, SOLVE, |r| {
            Ok(Solve {
                adjoint: r.bool("adjoint")?,
            })
        })
    }
}

/// `linalg.lu`: no attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lu;

impl Lu {
    /// The op with result types `results`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp::new(LU, results)
    }

    /// Reads `op` (a `linalg.lu` without attributes).
    pub fn decode(op: &ExtensionOp) -> Result<Lu, AttrError> {
        decode_with(op, LU, |_| Ok(Lu))
    }
}

/// `linalg.qr`: reduced, or complete (`Q` `[m, m]`, `R` `[m, n]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Qr {
    /// The complete factorization (else the reduced one).
    pub complete: bool,
}

impl Qr {
    /// The op with result types `results`: attribute `complete`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp::new(QR, results).with_attr("complete", Attr::Bool(self.complete))
    }

    /// Reads the attributes of a `linalg.qr`.
    pub fn decode(op: &ExtensionOp) -> Result<Qr, AttrError> {
        decode_with(op, QR, |r| {
            Ok(Qr {
                complete: r.bool("complete")?,
            })
        })
    }
}

/// `linalg.svd`: which factors, how many triplets, and the derivative options (which
/// change only the AD rule, not the values).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Svd {
    /// Return `U` and `Vh` (else only `S`).
    pub compute_uv: bool,
    /// Return only the `k` largest triplets (a truncated SVD, `k >= 1`; encoded as the
    /// integer `keep`, 0 for `None`).
    pub keep: Option<usize>,
    /// `U` `[m, m]` and `Vh` `[n, n]` (else `[m, k]` and `[k, n]`).
    pub full_matrices: bool,
    /// The singular-vector derivative drops the coupling of exactly equal singular values
    /// (and the `1/s` of an exactly zero one) instead of dividing by zero.
    pub safe_gaps: bool,
    /// `> 0`: Lorentzian broadening of the derivative's `1/(s_j² - s_i²)` and `1/s`.
    pub derivative_eps: f64,
}

impl Svd {
    /// The op with result types `results`: attributes `compute_uv`, `keep`,
    /// `full_matrices`, `safe_gaps`, `derivative_eps`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        let keep = self
            .keep
            .map_or(0, |k| i64::try_from(k).unwrap_or(i64::MAX));
        let op = ExtensionOp::new(SVD, results)
            .with_attr("compute_uv", Attr::Bool(self.compute_uv))
            .with_attr("keep", Attr::Int(keep))
            .with_attr("full_matrices", Attr::Bool(self.full_matrices))
            .with_attr("safe_gaps", Attr::Bool(self.safe_gaps))
            .with_attr(
                "derivative_eps",
                Attr::FloatBits(self.derivative_eps.to_bits()),
            );
        if self.compute_uv {
            op
        } else {
            // S alone is result 1 of the op with vectors.
            op.with_superset("compute_uv", &[1])
        }
    }

    /// Reads the attributes of a `linalg.svd`.
    pub fn decode(op: &ExtensionOp) -> Result<Svd, AttrError> {
        decode_with(op, SVD, |r| {
            let compute_uv = r.bool("compute_uv")?;
            let keep = match r.int("keep")? {
                0 => None,
                k => Some(usize::try_from(k).map_err(|_| {
                    r.bad_value("keep", format!("must be >= 0 (0: all triplets), got {k}"))
                })?),
            };
            Ok(Svd {
                compute_uv,
                keep,
                full_matrices: r.bool("full_matrices")?,
                safe_gaps: r.bool("safe_gaps")?,
                derivative_eps: derivative_eps(r)?,
            })
        })
    }
}

/// `linalg.eigh` and `linalg.eig`: eigenvalues, with or without eigenvectors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Eigen {
    /// Return the eigenvectors too.
    pub eigenvectors: bool,
    /// `> 0`: the eigenvector derivative's `1/(w_j - w_i)` becomes `d/(|d|² + eps)`
    /// (values unchanged).
    pub derivative_eps: f64,
}

impl Eigen {
    /// The op `name` (`linalg.eigh` or `linalg.eig`) with result types `results`:
    /// attributes `eigenvectors`, `derivative_eps`.
    fn encode_as(&self, name: &str, results: Vec<TensorType>) -> ExtensionOp {
        let op = ExtensionOp::new(name, results)
            .with_attr("eigenvectors", Attr::Bool(self.eigenvectors))
            .with_attr(
                "derivative_eps",
                Attr::FloatBits(self.derivative_eps.to_bits()),
            );
        if self.eigenvectors {
            op
        } else {
            // The eigenvalues alone are result 0 of the op with vectors.
            op.with_superset("eigenvectors", &[0])
        }
    }

    fn decode_as(op: &ExtensionOp, name: &str) -> Result<Eigen, AttrError> {
        decode_with(op, name, |r| {
            Ok(Eigen {
                eigenvectors: r.bool("eigenvectors")?,
                derivative_eps: derivative_eps(r)?,
            })
        })
    }

    /// A `linalg.eigh` with result types `results`.
    pub fn encode_eigh(&self, results: Vec<TensorType>) -> ExtensionOp {
        self.encode_as(EIGH, results)
    }

    /// Reads the attributes of a `linalg.eigh`.
    pub fn decode_eigh(op: &ExtensionOp) -> Result<Eigen, AttrError> {
        Eigen::decode_as(op, EIGH)
    }

    /// A `linalg.eig` with result types `results`.
    pub fn encode_eig(&self, results: Vec<TensorType>) -> ExtensionOp {
        self.encode_as(EIG, results)
    }

    /// Reads the attributes of a `linalg.eig`.
    pub fn decode_eig(op: &ExtensionOp) -> Result<Eigen, AttrError> {
        Eigen::decode_as(op, EIG)
    }
}

/// `linalg.eig_distinct`: no attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EigDistinct;

impl EigDistinct {
    /// The op with result types `results`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp::new(EIG_DISTINCT, results)
    }

    /// Reads `op` (a `linalg.eig_distinct` without attributes).
    pub fn decode(op: &ExtensionOp) -> Result<EigDistinct, AttrError> {
        decode_with(op, EIG_DISTINCT, |_| Ok(EigDistinct))
    }
}

/// `linalg.full_piv_perm`: no attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FullPivPerm;

impl FullPivPerm {
    /// The op with result types `results`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp::new(FULL_PIV_PERM, results)
    }

    /// Reads `op` (a `linalg.full_piv_perm` without attributes).
    pub fn decode(op: &ExtensionOp) -> Result<FullPivPerm, AttrError> {
        decode_with(op, FULL_PIV_PERM, |_| Ok(FullPivPerm))
    }
}

/// Any linalg primitive with its attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinalgOp {
    /// `linalg.cholesky`.
    Cholesky(Cholesky),
    /// `linalg.triangular_solve`.
    TriangularSolve(TriangularSolve),
    /// `linalg.solve`.
    Solve(Solve),
    /// `linalg.lu`.
    Lu(Lu),
    /// `linalg.qr`.
    Qr(Qr),
    /// `linalg.svd`.
    Svd(Svd),
    /// `linalg.eigh`.
    Eigh(Eigen),
    /// `linalg.eig`.
    Eig(Eigen),
    /// `linalg.eig_distinct`.
    EigDistinct(EigDistinct),
    /// `linalg.full_piv_perm`.
    FullPivPerm(FullPivPerm),
}

impl LinalgOp {
    /// The op with result types `results`.
    pub fn encode(&self, results: Vec<TensorType>) -> ExtensionOp {
        match self {
            LinalgOp::Cholesky(a) => a.encode(results),
            LinalgOp::TriangularSolve(a) => a.encode(results),
            LinalgOp::Solve(a) => a.encode(results),
            LinalgOp::Lu(a) => a.encode(results),
            LinalgOp::Qr(a) => a.encode(results),
            LinalgOp::Svd(a) => a.encode(results),
            LinalgOp::Eigh(a) => a.encode_eigh(results),
            LinalgOp::Eig(a) => a.encode_eig(results),
            LinalgOp::EigDistinct(a) => a.encode(results),
            LinalgOp::FullPivPerm(a) => a.encode(results),
        }
    }

    /// Reads `op` by its name; an op that is not a linalg primitive is
    /// [`AttrError::WrongOp`].
    pub fn decode(op: &ExtensionOp) -> Result<LinalgOp, AttrError> {
        Ok(match op.name.as_str() {
            CHOLESKY => LinalgOp::Cholesky(Cholesky::decode(op)?),
            TRIANGULAR_SOLVE => LinalgOp::TriangularSolve(TriangularSolve::decode(op)?),
            SOLVE => LinalgOp::Solve(Solve::decode(op)?),
            LU => LinalgOp::Lu(Lu::decode(op)?),
            QR => LinalgOp::Qr(Qr::decode(op)?),
            SVD => LinalgOp::Svd(Svd::decode(op)?),
            EIGH => LinalgOp::Eigh(Eigen::decode_eigh(op)?),
            EIG => LinalgOp::Eig(Eigen::decode_eig(op)?),
            EIG_DISTINCT => LinalgOp::EigDistinct(EigDistinct::decode(op)?),
            FULL_PIV_PERM => LinalgOp::FullPivPerm(FullPivPerm::decode(op)?),
            _ => {
                return Err(AttrError::WrongOp {
                    op: op.name.clone(),
                    expected: "linalg.*".to_string(),
                })
            }
        })
    }
}
