//! "Did you mean ...?" for misspelt keys and values.

/// The candidate closest to `input`, if one is close enough to be a likely typo.
///
/// Close enough: an edit distance of at most a third of the word (at least 1),
/// or a Jaro-Winkler similarity of 0.85 or more (catches transpositions and
/// truncations such as `thresold_ms` or `scale_upp`).
pub fn did_you_mean<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = input.to_ascii_lowercase();
    let mut best: Option<(&'c str, f64)> = None;
    for &c in candidates {
        let distance = strsim::levenshtein(&lower, c);
        let jw = strsim::jaro_winkler(&lower, c);
        let close = distance <= (c.len() / 3).max(1) || jw >= 0.85;
        if !close {
            continue;
        }
        let score = jw - distance as f64 * 0.01;
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["metric", "threshold_ms", "window", "sustain", "step", "max_step", "cooldown"];
        assert_eq!(did_you_mean("thresold_ms", &keys), Some("threshold_ms"));
        assert_eq!(did_you_mean("Window", &keys), Some("window"));
        assert_eq!(did_you_mean("cool_down", &keys), Some("cooldown"));
        assert_eq!(did_you_mean("maxstep", &keys), Some("max_step"));
        assert_eq!(did_you_mean("banana", &keys), None);
        assert_eq!(did_you_mean("twinkel", &["cold", "resume", "lazy", "mmap", "twinkle"]), Some("twinkle"));
    }
}
