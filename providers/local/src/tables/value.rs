//! DynamoDB's attribute values (`{"S": ..}`, `{"N": ..}`, `{"M": ..}`, ...): parsing the wire
//! JSON with DynamoDB's validation messages, exact decimal numbers, comparison, item size, and
//! the order-preserving byte encoding of key values that the store sorts by.
//!
//! Numbers are [`BigDecimal`]s: DynamoDB numbers have up to 38 significant digits and an
//! exponent from -130 to +125, more than `f64` or a 96-bit decimal holds, and are compared and
//! added exactly. They are answered normalised, as DynamoDB does (`"01.50"` reads back `"1.5"`).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::str::FromStr;

use base64::Engine;
use bigdecimal::BigDecimal;
use serde_json::{Map, Value, json};

/// An item: attribute name to value.
pub type Item = BTreeMap<String, AV>;

/// One attribute value.
#[derive(Debug, Clone)]
pub enum AV {
    S(String),
    N(BigDecimal),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(BTreeMap<String, AV>),
    L(Vec<AV>),
    SS(Vec<String>),
    NS(Vec<BigDecimal>),
    BS(Vec<Vec<u8>>),
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Parses a DynamoDB number (`N`), refusing what DynamoDB refuses.
pub fn parse_number(s: &str) -> Result<BigDecimal, String> {
    let t = s.trim();
    let ok_chars = !t.is_empty()
        && t.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'))
        && t.bytes().any(|c| c.is_ascii_digit());
    let n = if ok_chars { BigDecimal::from_str(t).ok() } else { None };
    let Some(n) = n else {
        return Err(format!("The parameter cannot be converted to a numeric value: {s}"));
    };
    let n = n.normalized();
    if n.sign() != bigdecimal::num_bigint::Sign::NoSign {
        let (int, scale) = n.as_bigint_and_exponent();
        let digits = digits(int.magnitude()).len() as i64;
        if digits > 38 {
            return Err("Attempting to store more than 38 significant digits in a Number".into());
        }
        // The value is 0.d1d2... × 10^e with e = digits - scale.
        let e = digits - scale;
        if e > 126 {
            return Err(
                "Number overflow. Attempting to store a number with magnitude larger than supported range"
                    .into(),
            );
        }
        if e < -129 {
            return Err(
                "Number underflow. Attempting to store a number with magnitude smaller than supported range"
                    .into(),
            );
        }
    }
    Ok(n)
}

/// The decimal digits of a number's magnitude; most fit a `u64`, whose formatting is much
/// cheaper than a big integer's.
fn digits(m: &bigdecimal::num_bigint::BigUint) -> String {
    let mut words = m.iter_u64_digits();
    match words.len() {
        0 => "0".to_string(),
        1 => words.next().unwrap_or(0).to_string(),
        _ => m.to_string(),
    }
}

/// A number as DynamoDB writes it: plain decimal, no exponent, no trailing zeros.
pub fn number_string(n: &BigDecimal) -> String {
    let n = n.normalized();
    let (int, scale) = n.as_bigint_and_exponent();
    let neg = int.sign() == bigdecimal::num_bigint::Sign::Minus;
    let digits = digits(int.magnitude());
    let body = if scale <= 0 {
        if digits == "0" { digits } else { format!("{digits}{}", "0".repeat((-scale) as usize)) }
    } else {
        let scale = scale as usize;
        if digits.len() > scale {
            format!("{}.{}", &digits[..digits.len() - scale], &digits[digits.len() - scale..])
        } else {
            format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
        }
    };
    if neg { format!("-{body}") } else { body }
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    B64.decode(s).map_err(|_| "Invalid base64 binary value".to_string())
}

impl AV {
    /// Parses the wire form; `Err` is a ValidationException message.
    pub fn from_json(v: &Value) -> Result<AV, String> {
        let Some(m) = v.as_object() else {
            return Err(format!("Supplied AttributeValue is not a map: {v}"));
        };
        if m.len() != 1 {
            return Err(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
                    .into(),
            );
        }
        let (t, x) = m.iter().next().unwrap();
        let bad = || format!("Supplied AttributeValue of type {t} is malformed: {x}");
        let strs = |x: &Value| -> Result<Vec<String>, String> {
            let a = x.as_array().ok_or_else(bad)?;
            a.iter().map(|s| s.as_str().map(str::to_string).ok_or_else(bad)).collect()
        };
        Ok(match t.as_str() {
            "S" => AV::S(x.as_str().ok_or_else(bad)?.to_string()),
            "N" => AV::N(parse_number(x.as_str().ok_or_else(bad)?)?),
            "B" => AV::B(b64(x.as_str().ok_or_else(bad)?)?),
            "BOOL" => AV::Bool(x.as_bool().ok_or_else(bad)?),
            "NULL" => {
                if x.as_bool() != Some(true) {
                    return Err("One or more parameter values were invalid: Null attribute value types must have the value of true".into());
                }
                AV::Null
            }
            "M" => {
                let o = x.as_object().ok_or_else(bad)?;
                let mut out = BTreeMap::new();
                for (k, v) in o {
                    out.insert(k.clone(), AV::from_json(v)?);
                }
                AV::M(out)
            }
            "L" => AV::L(x.as_array().ok_or_else(bad)?.iter().map(AV::from_json).collect::<Result<_, _>>()?),
            "SS" | "NS" | "BS" => {
                let items = strs(x)?;
                if items.is_empty() {
                    return Err("One or more parameter values were invalid: An string set  may not be empty"
                        .replace(
                            "string",
                            match t.as_str() {
                                "NS" => "number",
                                "BS" => "binary",
                                _ => "string",
                            },
                        ));
                }
                let dup = || {
                    format!(
                        "One or more parameter values were invalid: Input collection {x} contains duplicates."
                    )
                };
                match t.as_str() {
                    "SS" => {
                        let mut v = items;
                        v.sort();
                        let n = v.len();
                        v.dedup();
                        if v.len() != n {
                            return Err(dup());
                        }
                        AV::SS(v)
                    }
                    "NS" => {
                        let mut v: Vec<BigDecimal> =
                            items.iter().map(|s| parse_number(s)).collect::<Result<_, _>>()?;
                        v.sort();
                        let n = v.len();
                        v.dedup();
                        if v.len() != n {
                            return Err(dup());
                        }
                        AV::NS(v)
                    }
                    _ => {
                        let mut v: Vec<Vec<u8>> = items.iter().map(|s| b64(s)).collect::<Result<_, _>>()?;
                        v.sort();
                        let n = v.len();
                        v.dedup();
                        if v.len() != n {
                            return Err(dup());
                        }
                        AV::BS(v)
                    }
                }
            }
            other => {
                return Err(format!(
                    "Supplied AttributeValue has an unknown data type `{other}`; one of S, N, B, BOOL, NULL, M, L, SS, NS, BS"
                ));
            }
        })
    }

    pub fn to_json(&self) -> Value {
        match self {
            AV::S(s) => json!({"S": s}),
            AV::N(n) => json!({"N": number_string(n)}),
            AV::B(b) => json!({"B": B64.encode(b)}),
            AV::Bool(b) => json!({"BOOL": b}),
            AV::Null => json!({"NULL": true}),
            AV::M(m) => json!({"M": m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<Map<_, _>>()}),
            AV::L(l) => json!({"L": l.iter().map(AV::to_json).collect::<Vec<_>>()}),
            AV::SS(v) => json!({"SS": v}),
            AV::NS(v) => json!({"NS": v.iter().map(number_string).collect::<Vec<_>>()}),
            AV::BS(v) => json!({"BS": v.iter().map(|b| B64.encode(b)).collect::<Vec<_>>()}),
        }
    }

    /// DynamoDB's type name (`S`, `N`, `BOOL`, ...), as `attribute_type` takes it.
    pub fn type_name(&self) -> &'static str {
        match self {
            AV::S(_) => "S",
            AV::N(_) => "N",
            AV::B(_) => "B",
            AV::Bool(_) => "BOOL",
            AV::Null => "NULL",
            AV::M(_) => "M",
            AV::L(_) => "L",
            AV::SS(_) => "SS",
            AV::NS(_) => "NS",
            AV::BS(_) => "BS",
        }
    }

    /// `<`, `>`...: defined between two strings, two numbers or two binaries.
    pub fn compare(&self, other: &AV) -> Option<Ordering> {
        match (self, other) {
            (AV::S(a), AV::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (AV::N(a), AV::N(b)) => Some(a.cmp(b)),
            (AV::B(a), AV::B(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// The size DynamoDB counts for a value (numbers: about one byte per two digits).
    pub fn size(&self) -> usize {
        match self {
            AV::S(s) => s.len(),
            AV::N(n) => number_size(n),
            AV::B(b) => b.len(),
            AV::Bool(_) | AV::Null => 1,
            AV::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            AV::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AV::SS(v) => v.iter().map(String::len).sum(),
            AV::NS(v) => v.iter().map(number_size).sum(),
            AV::BS(v) => v.iter().map(Vec::len).sum(),
        }
    }
}

fn number_size(n: &BigDecimal) -> usize {
    let digits = digits(n.as_bigint_and_exponent().0.magnitude()).len();
    digits.div_ceil(2) + 1
}

impl PartialEq for AV {
    fn eq(&self, other: &AV) -> bool {
        match (self, other) {
            (AV::S(a), AV::S(b)) => a == b,
            (AV::N(a), AV::N(b)) => a == b,
            (AV::B(a), AV::B(b)) => a == b,
            (AV::Bool(a), AV::Bool(b)) => a == b,
            (AV::Null, AV::Null) => true,
            (AV::M(a), AV::M(b)) => a == b,
            (AV::L(a), AV::L(b)) => a == b,
            // Sets are kept sorted.
            (AV::SS(a), AV::SS(b)) => a == b,
            (AV::NS(a), AV::NS(b)) => a == b,
            (AV::BS(a), AV::BS(b)) => a == b,
            _ => false,
        }
    }
}

/// Item size: attribute names plus values (the 400 KB limit).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

pub fn item_from_json(v: &Value) -> Result<Item, String> {
    let Some(m) = v.as_object() else {
        return Err("Item must be a map of attribute names to AttributeValues".into());
    };
    let mut out = Item::new();
    for (k, v) in m {
        out.insert(k.clone(), AV::from_json(v)?);
    }
    Ok(out)
}

pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// Writes `serde_json::to_vec(&item_to_json(item))` into `out`, without building the
/// `Value` (the writer thread encodes every item it stores: [`crate::tables`]). Key order is
/// the same: both maps sort their keys.
pub fn write_item_json(item: &Item, out: &mut Vec<u8>) {
    write_map(item, out);
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("a string serializes");
}

fn write_map(m: &BTreeMap<String, AV>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k, out);
        out.push(b':');
        v.write_json(out);
    }
    out.push(b'}');
}

fn write_list<T>(items: &[T], out: &mut Vec<u8>, mut f: impl FnMut(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f(x, out);
    }
    out.push(b']');
}

impl AV {
    /// Writes `serde_json::to_vec(&self.to_json())` into `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(self.type_name().as_bytes());
        out.extend_from_slice(b"\":");
        match self {
            AV::S(s) => write_str(s, out),
            AV::N(n) => write_str(&number_string(n), out),
            AV::B(b) => write_str(&B64.encode(b), out),
            AV::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            AV::Null => out.extend_from_slice(b"true"),
            AV::M(m) => write_map(m, out),
            AV::L(l) => write_list(l, out, |v, out| v.write_json(out)),
            AV::SS(v) => write_list(v, out, |s, out| write_str(s, out)),
            AV::NS(v) => write_list(v, out, |n, out| write_str(&number_string(n), out)),
            AV::BS(v) => write_list(v, out, |b, out| write_str(&B64.encode(b), out)),
        }
        out.push(b'}');
    }
}

/// Order-preserving bytes of a key value (`S`, `N` or `B`): comparing the bytes compares the
/// values as DynamoDB orders them (strings and binaries bytewise, numbers numerically).
pub fn key_bytes(v: &AV) -> Vec<u8> {
    match v {
        AV::S(s) => s.as_bytes().to_vec(),
        AV::B(b) => b.clone(),
        AV::N(n) => number_bytes(n),
        _ => Vec::new(),
    }
}

/// Numbers as `sign, exponent, digits`: zero is `0x80`; a positive 0.d1d2.. × 10^e is `0xC0,
/// e + 0x8000 (big-endian), digits 1..=10`; a negative one the same with exponent and digits
/// inverted and a terminator above every digit, so that -0.12 sorts after -0.123.
fn number_bytes(n: &BigDecimal) -> Vec<u8> {
    let n = n.normalized();
    let (int, scale) = n.as_bigint_and_exponent();
    let neg = match int.sign() {
        bigdecimal::num_bigint::Sign::NoSign => return vec![0x80],
        bigdecimal::num_bigint::Sign::Minus => true,
        bigdecimal::num_bigint::Sign::Plus => false,
    };
    let digits = digits(int.magnitude());
    let e = digits.len() as i64 - scale;
    let mut out = Vec::with_capacity(digits.len() + 4);
    if neg {
        out.push(0x40);
        out.extend_from_slice(&((0x8000 - e) as u16).to_be_bytes());
        out.extend(digits.bytes().map(|d| 10 - (d - b'0')));
        out.push(11);
    } else {
        out.push(0xC0);
        out.extend_from_slice(&((0x8000 + e) as u16).to_be_bytes());
        out.extend(digits.bytes().map(|d| d - b'0' + 1));
    }
    out
}

/// Escapes `b` so that it can be followed by more bytes without changing the order:
/// `0x00` becomes `0x00 0xFF`, and the end is `0x00 0x01`.
pub fn escaped(b: &[u8], out: &mut Vec<u8>) {
    for &c in b {
        out.push(c);
        if c == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> BigDecimal {
        parse_number(s).unwrap()
    }

    #[test]
    fn numbers_are_exact_and_normalised() {
        assert_eq!(number_string(&n("01.50")), "1.5");
        assert_eq!(number_string(&n("1e3")), "1000");
        assert_eq!(number_string(&n("-0.000120")), "-0.00012");
        assert_eq!(number_string(&n("0")), "0");
        let big = "12345678901234567890123456789012345678";
        assert_eq!(number_string(&(n(big) + n("1"))), "12345678901234567890123456789012345679");
        assert!(parse_number("123456789012345678901234567890123456789").unwrap_err().contains("38"));
        assert!(parse_number("abc").unwrap_err().contains("numeric"));
        assert!(parse_number("1e200").unwrap_err().contains("overflow"));
        assert!(parse_number("").is_err());
    }

    #[test]
    fn number_bytes_sort_like_numbers() {
        let vals =
            ["-1000", "-12", "-0.123", "-0.12", "0", "0.0001", "0.12", "0.123", "1", "9", "10", "1e30"];
        for w in vals.windows(2) {
            assert!(number_bytes(&n(w[0])) < number_bytes(&n(w[1])), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn items_are_written_as_serde_json_writes_them() {
        let v = json!({
            "s": {"S": "a \"quoted\" \\ line\nwith\ttabs, \u{1} and ünïcödé 🎉"},
            "n": {"N": "-0012.50"}, "big": {"N": "123456789012345678901234567890.5"}, "zero": {"N": "0"},
            "e": {"N": "1e20"}, "tiny": {"N": "-1e-30"},
            "b": {"B": "AAE="}, "t": {"BOOL": true}, "f": {"BOOL": false}, "null": {"NULL": true},
            "m": {"M": {"z": {"S": ""}, "a": {"L": [{"N": "1"}, {"M": {}}, {"L": []}]}, "k\"ey": {"NULL": true}}},
            "ss": {"SS": ["b", "a", "é"]}, "ns": {"NS": ["10", "2.5", "-3"]}, "bs": {"BS": ["AQ==", "AA=="]},
            "": {"S": "empty name"}, "Z": {"S": "upper before lower"}
        });
        let item = item_from_json(&v).unwrap();
        let mut out = Vec::new();
        write_item_json(&item, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&item_to_json(&item)).unwrap());
        let mut out = Vec::new();
        write_item_json(&Item::new(), &mut out);
        assert_eq!(out, b"{}");
    }

    #[test]
    fn wire_round_trip_and_errors() {
        let v = json!({"M": {"a": {"L": [{"N": "1.0"}, {"SS": ["b", "a"]}, {"NULL": true}, {"B": "AAE="}]}}});
        let av = AV::from_json(&v).unwrap();
        assert_eq!(
            av.to_json(),
            json!({"M": {"a": {"L": [{"N": "1"}, {"SS": ["a", "b"]}, {"NULL": true}, {"B": "AAE="}]}}})
        );
        assert!(AV::from_json(&json!({"SS": []})).unwrap_err().contains("may not be empty"));
        assert!(AV::from_json(&json!({"SS": ["a", "a"]})).unwrap_err().contains("duplicates"));
        assert!(AV::from_json(&json!({"S": "a", "N": "1"})).unwrap_err().contains("more than one"));
        assert!(AV::from_json(&json!({"X": "a"})).is_err());
    }
}
