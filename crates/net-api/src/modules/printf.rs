//! C's `%.Ng` number formatting, which the firmware's JSON modules print numbers with
//! (`%.19g` in sjson, `%.14g` in cjson, as `LUA_NUMBER_FMT`).

/// `snprintf(buf, n, "%.<prec>g", x)` as glibc and newlib print it: `prec` significant digits,
/// fixed or exponent form by the exponent, trailing zeros dropped.
pub fn fmt_g(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    let p = prec.max(1);
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Integers print as themselves while they have no more digits than the precision (and are
    // exact): the common case, without digit generation.
    let limit = 10f64.powi(p.min(15) as i32).min(9007199254740992.0);
    if x.fract() == 0.0 && x.abs() < limit {
        return (x as i64).to_string();
    }
    // The digits once, rounded to p significant digits; the exponent after rounding decides the
    // form, as C specifies, and the fixed form is the same digits with the point moved.
    let sci = format!("{:.*e}", p - 1, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 6);
    if neg {
        out.push('-');
    }
    if exp >= 0 {
        let (int, frac) = digits.split_at((exp as usize + 1).min(digits.len()));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    }
    strip_zeros(&out).to_string()
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_g;

    #[test]
    fn matches_c_printf() {
        assert_eq!(fmt_g(1.0, 14), "1");
        assert_eq!(fmt_g(0.1, 14), "0.1");
        assert_eq!(fmt_g(0.1, 19), "0.1000000000000000056");
        assert_eq!(fmt_g(2.75, 19), "2.75");
        assert_eq!(fmt_g(0.3, 19), "0.2999999999999999889");
        assert_eq!(fmt_g(1e100, 14), "1e+100");
        assert_eq!(fmt_g(123456789012345.0, 14), "1.2345678901234e+14");
        assert_eq!(fmt_g(0.0001, 14), "0.0001");
        assert_eq!(fmt_g(0.00001, 14), "1e-05");
        assert_eq!(fmt_g(-2.5, 19), "-2.5");
        assert_eq!(fmt_g(100.0, 19), "100");
        assert_eq!(fmt_g(f64::INFINITY, 19), "inf");
        assert_eq!(fmt_g(9.99999999999999e14, 14), "1e+15");
        assert_eq!(fmt_g(99999.99999999999, 14), "100000");
        assert_eq!(fmt_g(-0.000123456, 3), "-0.000123");
        assert_eq!(fmt_g(1e15, 14), "1e+15");
        assert_eq!(fmt_g(123456789012345678.0, 19), "123456789012345680");
        assert_eq!(fmt_g(12.5, 1), "1e+01");
        assert_eq!(fmt_g(2.5, 1), "2");
    }
}
