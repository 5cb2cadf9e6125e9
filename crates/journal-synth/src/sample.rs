//! Sampling helpers on top of the seeded ChaCha stream.
//!
//! `rand_distr` is not a workspace dependency, so the few distributions needed are written out
//! here. They use [`exp`] and [`ln`] below instead of `f64::exp`/`f64::ln`: those call the
//! platform's libm, whose last-bit rounding differs between systems, and a one-ulp difference can
//! flip a rounded score or a threshold comparison. Built from `+ - * /` only (exactly rounded by
//! IEEE 754 everywhere), the output is byte-identical on every platform.

use rand::Rng as _;
use sha2::{Digest, Sha256};

/// The one RNG the generator uses: portable and seedable, never the OS or the clock.
pub(crate) type Rng = rand_chacha::ChaCha8Rng;

/// Uniform in `[0, 1)`.
pub(crate) fn unit(rng: &mut Rng) -> f64 {
    rng.gen::<f64>()
}

/// Uniform in `(0, 1]`, safe to take the logarithm of.
fn open_unit(rng: &mut Rng) -> f64 {
    1.0 - rng.gen::<f64>()
}

pub(crate) fn chance(rng: &mut Rng, p: f64) -> bool {
    unit(rng) < p
}

/// Normal by Marsaglia's polar method (the second variate is dropped; simpler than caching).
pub(crate) fn normal(rng: &mut Rng, mean: f64, sd: f64) -> f64 {
    loop {
        let u = 2.0 * unit(rng) - 1.0;
        let v = 2.0 * unit(rng) - 1.0;
        let q = u * u + v * v;
        if q > 0.0 && q < 1.0 {
            // `sqrt` is exactly rounded by IEEE 754, so it is portable.
            return mean + sd * u * (-2.0 * ln(q) / q).sqrt();
        }
    }
}

/// Log-normal given its median and the standard deviation of the log.
pub(crate) fn log_normal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * exp(normal(rng, 0.0, sigma))
}

pub(crate) fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    -mean * ln(open_unit(rng))
}

/// Poisson by Knuth's product method; fine for the small rates used here. Capped at `cap`.
pub(crate) fn poisson(rng: &mut Rng, lambda: f64, cap: u32) -> u32 {
    let limit = exp(-lambda);
    let mut k = 0;
    let mut p = unit(rng);
    while p > limit && k < cap {
        k += 1;
        p *= unit(rng);
    }
    k
}

/// Picks an item by integer weight. Precondition: `items` is non-empty and some weight > 0
/// (all callers pass constant tables or sanitized configuration).
pub(crate) fn weighted<'a, T>(rng: &mut Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (item, w) in items {
        let w = u64::from(*w);
        if x < w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

/// Picks uniformly. Precondition: `items` is non-empty.
pub(crate) fn uniform<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// Zipf-like rank in `0..n` (density ∝ 1/rank): a few subjects get many decisions.
pub(crate) fn zipf_rank(rng: &mut Rng, n: u32) -> u32 {
    let n = n.max(1);
    let x = exp(unit(rng) * ln(f64::from(n) + 1.0)) - 1.0;
    (x as u32).min(n - 1)
}

pub(crate) fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    x.max(lo).min(hi)
}

/// Rounds to `decimals` (0..=6) places so numbers serialize short, as real producers send them.
pub(crate) fn round_to(x: f64, decimals: u32) -> f64 {
    let f = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6][decimals.min(6) as usize];
    (x * f).round() / f
}

/// `e^x` from basic arithmetic: `x = k ln 2 + r` with `|r| <= ln 2 / 2`, a Taylor series for
/// `e^r` (17 terms, error below 1e-17), and `2^k` assembled from its bits. Clamped to ±700.
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(-700.0, 700.0);
    let k = (x / std::f64::consts::LN_2).round();
    let r = x - k * std::f64::consts::LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..=17 {
        term = term * r / f64::from(i);
        sum += term;
    }
    // |k| <= 1010, so the biased exponent stays in 13..=2033, a normal double.
    let two_k = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    sum * two_k
}

/// Natural logarithm of a positive, normal `x` from basic arithmetic: `x = m 2^e` with
/// `m` in `[√½, √2)`, then `ln m = 2 atanh(s)` with `s = (m-1)/(m+1)`, `|s| < 0.172`.
/// Returns NaN for `x <= 0` or non-finite `x` (callers never pass such values).
pub(crate) fn ln(x: f64) -> f64 {
    if !(x > 0.0 && x.is_finite()) || x < f64::MIN_POSITIVE {
        return f64::NAN;
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m >= std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut power = s;
    let mut sum = 0.0;
    for i in 0..12 {
        sum += power / f64::from(2 * i + 1);
        power *= s2;
    }
    e as f64 * std::f64::consts::LN_2 + 2.0 * sum
}

/// Lowercase hex SHA-256 of the concatenated parts.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// A hash-shaped value for content that is never materialized (prompts, documents).
pub(crate) fn random_sha256(rng: &mut Rng) -> String {
    hex::encode(rng.gen::<[u8; 32]>())
}

pub(crate) fn random_hex(rng: &mut Rng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf[..]);
    hex::encode(buf)
}

/// A ULID whose time part is the record's own instant and whose random part comes from the
/// seeded stream, so ids are time-ordered and reproducible.
pub(crate) fn ulid(rng: &mut Rng, millis: i64) -> String {
    ulid::Ulid::from_parts(millis.max(0) as u64, rng.gen::<u128>()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn distributions_have_the_intended_centre() {
        let mut rng = Rng::seed_from_u64(7);
        let n = 20_000;
        let mean = (0..n).map(|_| normal(&mut rng, 690.0, 70.0)).sum::<f64>() / n as f64;
        assert!((mean - 690.0).abs() < 3.0, "{mean}");
        let mut logs: Vec<f64> = (0..n).map(|_| log_normal(&mut rng, 100.0, 0.5)).collect();
        logs.sort_by(f64::total_cmp);
        let median = logs[n / 2];
        assert!((median - 100.0).abs() < 3.0, "{median}");
        let lam = (0..n).map(|_| poisson(&mut rng, 1.5, 50)).sum::<u32>() as f64 / n as f64;
        assert!((lam - 1.5).abs() < 0.05, "{lam}");
        let zeros = (0..n).filter(|_| zipf_rank(&mut rng, 1000) == 0).count();
        // P(rank 0) = ln 2 / ln 1001 ≈ 0.10.
        assert!((1500..2500).contains(&zeros), "{zeros}");
    }

    #[test]
    fn portable_exp_and_ln_match_libm() {
        let mut rng = Rng::seed_from_u64(3);
        for _ in 0..10_000 {
            let x = (unit(&mut rng) - 0.5) * 60.0;
            let rel = (exp(x) - x.exp()).abs() / x.exp();
            assert!(rel < 1e-14, "exp({x})");
            let y = exp(x);
            assert!(
                (ln(y) - y.ln()).abs() < 1e-13 * y.ln().abs().max(1.0),
                "ln({y})"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(1.0), 0.0);
        assert!(ln(0.0).is_nan() && ln(-1.0).is_nan());
    }

    #[test]
    fn ulid_carries_the_time() {
        let mut rng = Rng::seed_from_u64(1);
        let id = ulid(&mut rng, 1_773_570_225_123);
        let parsed = ulid::Ulid::from_string(&id).unwrap();
        assert_eq!(parsed.timestamp_ms(), 1_773_570_225_123);
    }
}
