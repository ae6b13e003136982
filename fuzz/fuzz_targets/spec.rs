//! One input, both front ends, every command's code path: see `resnetc::fuzz`.
//!
//! A panic is a finding, and so is a broken property: the target panics with it. Set
//! `RESNETC_FUZZ_IGNORE` to a comma-separated list of property names (`diagnostics-inert`,
//! `generated-module`, ...) to keep fuzzing past known violations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn ignored() -> &'static [String] {
    static IGNORED: OnceLock<Vec<String>> = OnceLock::new();
    IGNORED.get_or_init(|| {
        std::env::var("RESNETC_FUZZ_IGNORE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    for report in resnetc::fuzz::exercise_both(data) {
        for v in &report.violations {
            if !ignored().iter().any(|i| i == v.property.as_str()) {
                panic!("{v}");
            }
        }
    }
});
