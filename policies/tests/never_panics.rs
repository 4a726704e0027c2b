//! Policy loading never panics, whatever the input: random text, and random
//! single-byte or single-line mutations of the real examples.

use policies::{parse_policy, SourceFile};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../examples/two-services.toml");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_text(text in "\\PC{0,400}") {
        let _ = parse_policy(&SourceFile::new("r.toml", text));
    }

    #[test]
    fn toml_like_text(text in "(\\[\\[?[a-z_.]{1,12}\\]\\]?\n|[a-z_]{1,14} = (\"[^\"\n]{0,12}\"|-?[0-9]{1,12}|[0-9.]{1,6}|true|\\[\\]|\\{\\})\n){0,20}") {
        let _ = parse_policy(&SourceFile::new("r.toml", text));
    }

    #[test]
    fn mutated_example(pos in 0usize..EXAMPLE.len(), byte in any::<u8>()) {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        bytes[pos] = byte;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = parse_policy(&SourceFile::new("m.toml", text));
    }

    #[test]
    fn example_with_a_line_replaced(line in 0usize..80, value in "(-?[0-9]{1,20}|\"[^\"\n]{0,10}\"|[0-9]+\\.[0-9]+|\\[\"[a-z0-9]{0,5}\"\\])") {
        let mut lines: Vec<String> = EXAMPLE.lines().map(str::to_string).collect();
        let i = line % lines.len();
        if let Some((key, _)) = lines[i].clone().split_once(" = ") {
            lines[i] = format!("{key} = {value}");
        }
        let _ = parse_policy(&SourceFile::new("m.toml", lines.join("\n")));
    }
}
