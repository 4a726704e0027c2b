//! Load profiles: the number of users (closed loop) or the arrival rate
//! (open loop) as a function of time. Shapes add up; each is given inline
//! (`step:base=50,peak=500,at=30s,hold=60s`, joined with `+`) or in a TOML
//! file (`[[shape]] kind = "step" ...`).

use std::path::Path;

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
#[error("profile {source_name}: {problem}")]
pub struct ProfileError {
    /// The spec or file it came from.
    pub source_name: String,
    /// What is wrong and how to write it.
    pub problem: String,
}

/// One shape of a profile.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// The same value throughout.
    Const(f64),
    /// `base`, then `peak` from `at` for `hold` seconds (the paper's flash crowd), then `base` again.
    Step {
        /// Before and after.
        base: f64,
        /// During.
        peak: f64,
        /// Start, s.
        at: f64,
        /// Length, s (infinite if not given).
        hold: f64,
    },
    /// `from` until `at`, then linearly to `to` over `over` seconds, then `to`.
    Ramp {
        /// Start value.
        from: f64,
        /// End value.
        to: f64,
        /// Start, s.
        at: f64,
        /// Length, s.
        over: f64,
    },
    /// `base`, with `peak` for `len` seconds from `at`: a short burst.
    Spike {
        /// Outside.
        base: f64,
        /// During.
        peak: f64,
        /// Start, s.
        at: f64,
        /// Length, s.
        len: f64,
    },
    /// A recorded crowd: (second, value) rows; each value holds until the next row.
    Trace(Vec<(f64, f64)>),
}

impl Shape {
    /// The shape's value at `t` seconds.
    pub fn at(&self, t: f64) -> f64 {
        match self {
            Shape::Const(v) => *v,
            Shape::Step { base, peak, at, hold } => {
                if t >= *at && t < at + hold {
                    *peak
                } else {
                    *base
                }
            }
            Shape::Ramp { from, to, at, over } => {
                if t < *at {
                    *from
                } else if *over <= 0.0 || t >= at + over {
                    *to
                } else {
                    from + (to - from) * (t - at) / over
                }
            }
            Shape::Spike { base, peak, at, len } => {
                if t >= *at && t < at + len {
                    *peak
                } else {
                    *base
                }
            }
            Shape::Trace(rows) => rows.iter().take_while(|(s, _)| *s <= t).last().map_or(0.0, |(_, v)| *v),
        }
    }
}

/// A sum of shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The shapes added up.
    pub shapes: Vec<Shape>,
}

impl Profile {
    /// A constant profile.
    pub fn constant(v: f64) -> Profile {
        Profile { shapes: vec![Shape::Const(v)] }
    }

    /// The value at `t` seconds (never negative).
    pub fn at(&self, t: f64) -> f64 {
        self.shapes.iter().map(|s| s.at(t)).sum::<f64>().max(0.0)
    }

    /// The largest value over `[0, duration]` (sampled every 10 ms).
    pub fn max(&self, duration: f64) -> f64 {
        let steps = (duration * 100.0).ceil().max(1.0) as usize;
        (0..=steps).map(|i| self.at(i as f64 / 100.0)).fold(0.0, f64::max)
    }

    /// Parses an inline spec, or reads a TOML file when `spec` names one
    /// (ends in `.toml`). `trace:file=X.csv` reads a CSV.
    pub fn parse(spec: &str) -> Result<Profile, ProfileError> {
        let err = |problem: String| ProfileError { source_name: spec.to_string(), problem };
        if spec.ends_with(".toml") {
            let text = std::fs::read_to_string(spec).map_err(|e| err(format!("cannot read it: {e}")))?;
            return Profile::from_toml(&text).map_err(err);
        }
        let mut shapes = Vec::new();
        for part in spec.split('+') {
            shapes.push(parse_shape(part.trim()).map_err(err)?);
        }
        Ok(Profile { shapes })
    }

    /// Reads `[[shape]]` tables: `kind` plus the same keys as inline.
    pub fn from_toml(text: &str) -> Result<Profile, String> {
        let v: toml::Table = toml::from_str(text).map_err(|e| format!("not TOML: {e}"))?;
        let list = v.get("shape").and_then(|s| s.as_array()).ok_or("expected [[shape]] tables")?;
        let mut shapes = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let t = s.as_table().ok_or(format!("shape {}: not a table", i + 1))?;
            let kind =
                t.get("kind").and_then(|k| k.as_str()).ok_or(format!("shape {}: needs kind = \"step\"|...", i + 1))?;
            let mut kv = Vec::new();
            for (k, v) in t {
                if k == "kind" {
                    continue;
                }
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    other => {
                        return Err(format!("shape {}: {k} = {other} is not a number, duration or file name", i + 1))
                    }
                };
                kv.push(format!("{k}={text}"));
            }
            shapes.push(parse_shape(&format!("{kind}:{}", kv.join(","))).map_err(|e| format!("shape {}: {e}", i + 1))?);
        }
        Ok(Profile { shapes })
    }
}

/// Seconds from `30s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_secs(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (v, 1.0)
    };
    num.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).map(|x| x * scale)
}

const KINDS: &str =
    "const:value=N, step:base=,peak=,at=,hold=, ramp:from=,to=,at=,over=, spike:base=,peak=,at=,for=, trace:file=X.csv";

fn parse_shape(part: &str) -> Result<Shape, String> {
    let (kind, args) = part.split_once(':').unwrap_or((part, ""));
    let mut kv = std::collections::BTreeMap::new();
    for a in args.split(',').filter(|a| !a.trim().is_empty()) {
        let (k, v) = a.split_once('=').ok_or(format!("{a:?} is not key=value (shapes: {KINDS})"))?;
        kv.insert(k.trim().to_string(), v.trim().to_string());
    }
    let num = |k: &str, default: Option<f64>| -> Result<f64, String> {
        match kv.get(k) {
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or(format!("{k}={v} is not a number >= 0")),
            None => default.ok_or(format!("{kind} needs {k}= (shapes: {KINDS})")),
        }
    };
    let secs = |k: &str, default: Option<f64>| -> Result<f64, String> {
        match kv.get(k) {
            Some(v) => parse_secs(v).ok_or(format!("{k}={v} is not a duration (30s, 500ms, 2m)")),
            None => default.ok_or(format!("{kind} needs {k}= (shapes: {KINDS})")),
        }
    };
    let known: &[&str] = match kind {
        "const" => &["value"],
        "step" => &["base", "peak", "at", "hold"],
        "ramp" => &["from", "to", "at", "over"],
        "spike" => &["base", "peak", "at", "for"],
        "trace" => &["file"],
        other => return Err(format!("unknown shape {other:?} (shapes: {KINDS})")),
    };
    if let Some(k) = kv.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("{kind} has no key {k:?} (it takes {})", known.join(", ")));
    }
    Ok(match kind {
        "const" => Shape::Const(num("value", None)?),
        "step" => Shape::Step {
            base: num("base", Some(0.0))?,
            peak: num("peak", None)?,
            at: secs("at", None)?,
            hold: secs("hold", Some(f64::INFINITY))?,
        },
        "ramp" => Shape::Ramp {
            from: num("from", Some(0.0))?,
            to: num("to", None)?,
            at: secs("at", Some(0.0))?,
            over: secs("over", None)?,
        },
        "spike" => Shape::Spike {
            base: num("base", Some(0.0))?,
            peak: num("peak", None)?,
            at: secs("at", None)?,
            len: secs("for", None)?,
        },
        _ => {
            let file = kv.get("file").ok_or("trace needs file=X.csv")?;
            Shape::Trace(read_trace(Path::new(file))?)
        }
    })
}

/// Rows `second,value` (a header line and `#` comments are skipped).
fn read_trace(path: &Path) -> Result<Vec<(f64, f64)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut it = l.split(',').map(str::trim);
        let (a, b) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(s), Ok(v)) if s >= 0.0 && v >= 0.0 => rows.push((s, v)),
            _ if i == 0 => continue, // a header
            _ => return Err(format!("{}:{}: expected `second,value`, found {l:?}", path.display(), i + 1)),
        }
    }
    if rows.is_empty() {
        return Err(format!("{}: no `second,value` rows", path.display()));
    }
    rows.sort_by(|x, y| x.0.total_cmp(&y.0));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_give_the_right_value_each_second() {
        let p = Profile::parse("step:base=50,peak=500,at=30s,hold=60s").expect("valid");
        assert_eq!(p.at(0.0), 50.0);
        assert_eq!(p.at(29.9), 50.0);
        assert_eq!(p.at(30.0), 500.0);
        assert_eq!(p.at(89.9), 500.0);
        assert_eq!(p.at(90.0), 50.0);
        let r = Profile::parse("ramp:from=10,to=110,at=10s,over=100s").expect("valid");
        assert_eq!(r.at(5.0), 10.0);
        assert!((r.at(60.0) - 60.0).abs() < 1e-9);
        assert_eq!(r.at(500.0), 110.0);
        let s = Profile::parse("const:value=20+spike:peak=200,at=5s,for=2s").expect("valid");
        assert_eq!(s.at(4.0), 20.0);
        assert_eq!(s.at(5.5), 220.0);
        assert_eq!(s.at(7.0), 20.0);
        assert_eq!(s.max(10.0), 220.0);
    }

    #[test]
    fn traces_and_toml_files_work() {
        let dir = std::env::temp_dir().join(format!("loadgen-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let csv = dir.join("crowd.csv");
        std::fs::write(&csv, "second,users\n0,10\n5,100\n8,20\n").expect("write");
        let p = Profile::parse(&format!("trace:file={}", csv.display())).expect("valid");
        assert_eq!((p.at(0.0), p.at(4.9), p.at(5.0), p.at(9.0)), (10.0, 10.0, 100.0, 20.0));
        let t = dir.join("p.toml");
        std::fs::write(
            &t,
            "[[shape]]\nkind = \"const\"\nvalue = 5\n[[shape]]\nkind = \"step\"\npeak = 45\nat = \"2s\"\n",
        )
        .expect("write");
        let p = Profile::parse(&t.display().to_string()).expect("valid");
        assert_eq!((p.at(1.0), p.at(3.0)), (5.0, 50.0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn mistakes_are_named() {
        let e = Profile::parse("stair:base=1").expect_err("unknown").to_string();
        assert!(e.contains("unknown shape \"stair\""), "{e}");
        let e = Profile::parse("step:base=1,at=3s").expect_err("no peak").to_string();
        assert!(e.contains("step needs peak="), "{e}");
        let e = Profile::parse("step:peak=5,at=soon").expect_err("bad at").to_string();
        assert!(e.contains("at=soon is not a duration"), "{e}");
        let e = Profile::parse("spike:peak=5,at=1s,len=2s").expect_err("bad key").to_string();
        assert!(e.contains("spike has no key \"len\""), "{e}");
    }
}
