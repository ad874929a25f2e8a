"""Fits the polynomial coefficients used by vmath (run: python3 fit_coeffs.py).

Each polynomial is a weighted least-squares fit on Chebyshev nodes in 50-digit arithmetic
(mpmath), which lands within a small factor of the minimax error; the coefficients are then
rounded to f64 and the error of the *whole* approximation is measured on a dense grid.
"""
import mpmath as mp

mp.mp.dps = 50


def fit(g, lo, hi, deg, weight=lambda t: 1, nodes=400):
    """Coefficients c0..c_deg of a polynomial in t approximating g(t) on [lo, hi]."""
    ts = [
        (lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (k + mp.mpf(0.5)) / nodes)
        for k in range(nodes)
    ]
    A = mp.matrix(nodes, deg + 1)
    b = mp.matrix(nodes, 1)
    for i, t in enumerate(ts):
        w = weight(t)
        for j in range(deg + 1):
            A[i, j] = w * t**j
        b[i] = w * g(t)
    c = mp.qr_solve(A, b)[0]
    return [float(c[j]) for j in range(deg + 1)]


def horner(c, t):
    acc = mp.mpf(0)
    for cj in reversed(c):
        acc = acc * t + mp.mpf(cj)
    return acc


def report(name, c, approx, exact, lo, hi, n=2000):
    err = 0
    for k in range(n + 1):
        x = lo + (hi - lo) * mp.mpf(k) / n
        if x == 0:
            continue
        e = exact(x)
        err = max(err, abs((approx(c, x) - e) / e))
    print(f"// {name}: deg {len(c)-1}, max rel err {float(err):.3g} = 2^{float(mp.log(err, 2)):.1f}")
    print(f"const {name}: [f64; {len(c)}] = [")
    for cj in c:
        print(f"    {cj!r},")
    print("];")


def q_exp(t):  # (e^t - 1 - t) / t^2
    return (mp.expm1(t) - t) / t**2 if abs(t) > mp.mpf("1e-20") else mp.mpf(0.5) + t / 6


def s_sin(z):  # (sin r - r) / (r z), z = r^2
    r = mp.sqrt(z)
    return (mp.sin(r) - r) / (r * z) if z > mp.mpf("1e-30") else mp.mpf(-1) / 6


def c_cos(z):  # (cos r - 1 + z/2) / z^2
    r = mp.sqrt(z)
    return (mp.cos(r) - 1 + z / 2) / z**2 if z > mp.mpf("1e-30") else mp.mpf(1) / 24


def t_log(z):  # (log((1+s)/(1-s))/s - 2) / z, z = s^2
    s = mp.sqrt(z)
    return (mp.log((1 + s) / (1 - s)) / s - 2) / z if z > mp.mpf("1e-30") else mp.mpf(2) / 3


LN2H = float(mp.log(2)) / 2 + 0.005
PI4 = float(mp.pi / 4) + 0.01
SMAX = float((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) + 0.001

# exp alone (no double-double around it) affords one degree less than expm1 / tanh.
c = fit(q_exp, -LN2H, LN2H, 9)
report("EXP_P_F64", c, lambda c, x: mp.mpf(1) + x + x * x * horner(c, x), mp.exp, -LN2H, LN2H)

for suffix, degs in (("F64", (10, 6, 5, 7)), ("F32", (5, 3, 3, 3))):
    de, ds, dc, dl = degs
    c = fit(q_exp, -LN2H, LN2H, de)
    report(f"EXP_Q_{suffix}", c, lambda c, x: mp.mpf(1) + x + x * x * horner(c, x), mp.exp, -LN2H, LN2H)
    c = fit(s_sin, 0, PI4**2, ds)
    report(f"SIN_S_{suffix}", c, lambda c, x: x + x**3 * horner(c, x * x), mp.sin, -PI4, PI4)
    c = fit(c_cos, 0, PI4**2, dc)
    report(f"COS_C_{suffix}", c, lambda c, x: 1 - x * x / 2 + x**4 * horner(c, x * x), mp.cos, -PI4, PI4)
    c = fit(t_log, 0, SMAX**2, dl)
    report(
        f"LOG_T_{suffix}",
        c,
        lambda c, s: 2 * s + s**3 * horner(c, s * s),
        lambda s: mp.log((1 + s) / (1 - s)),
        -SMAX,
        SMAX,
    )


# erf / erfc.
def erfcx(x):  # e^{x^2} erfc(x)
    return mp.erfc(x) * mp.exp(x * x)


def y_erf(z):  # erf(x)/x - 1, z = x^2
    x = mp.sqrt(z)
    return mp.erf(x) / x - 1 if x > mp.mpf("1e-25") else 2 / mp.sqrt(mp.pi) - 1


def report_abs(name, c, approx, exact, lo, hi, n=2000):
    """As `report`, but the absolute error (for results near 1, whose ulp is fixed)."""
    err = max(abs(approx(c, lo + (hi - lo) * mp.mpf(k) / n) - exact(lo + (hi - lo) * mp.mpf(k) / n)) for k in range(n + 1))
    print(f"// {name}: deg {len(c)-1}, max abs err {float(err):.3g} = 2^{float(mp.log(err, 2)):.1f}")
    print(f"const {name}: [f64; {len(c)}] = [")
    for cj in c:
        print(f"    {cj!r},")
    print("];")


# |x| < 1: erf(x) = x + x y(x^2).
for suffix, deg in (("F64", 12), ("F32", 7)):
    c = fit(y_erf, 0, 1, deg)
    report(f"ERF_Y_{suffix}", c, lambda c, x: x + x * horner(c, x * x), mp.erf, 0, 1)

# f64, 1 <= |x| <= 6: erf(x) = 1 - e^{-x^2} P(x - 3.5); the error that matters is erf's
# absolute error, so the fit of erfcx is weighted by e^{-x^2}.
ERF_MID = 3.5
c = fit(lambda u: erfcx(u + ERF_MID), 1 - ERF_MID, 6 - ERF_MID, 20, lambda u: mp.exp(-(u + ERF_MID) ** 2))
report_abs("ERFC_P_F64", c, lambda c, x: 1 - mp.exp(-x * x) * horner(c, x - ERF_MID), mp.erf, 1, 6)

# f32 (evaluated in f64), 1 <= |x| <= 11: erfc(x) = e^{-x^2} t Q(t - TM), t = 2/(2 + x);
# relative error (erfc is wanted to f32 accuracy all the way into its subnormals). The
# variable is centred on TM = 16/39.
T_LO, T_HI = mp.mpf(2) / 13, mp.mpf(2) / 3
TM = (T_LO + T_HI) / 2
g = lambda t: erfcx(2 / t - 2) / t
c = fit(lambda u: g(u + TM), T_LO - TM, T_HI - TM, 9, lambda u: 1 / g(u + TM))
report("ERFC_Q_F32", c, lambda c, x: mp.exp(-x * x) * (2 / (2 + x)) * horner(c, 2 / (2 + x) - TM), mp.erfc, 1, 11)
