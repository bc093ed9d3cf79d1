//! Fuzzing what comes from outside (event JSON, commands, config, account
//! data, policy rules, settings) as ordinary `#[test]`s on stable Rust.
//!
//! A fuzz test is named `fuzz_*` (so `cargo test fuzz_` runs just those, as
//! `cargo xtask fuzz` does) and calls [`fuzz`] with a generator of
//! structured inputs (rendered as text) and a check. [`fuzz`] first replays
//! the committed corpus, `tests/fuzz/corpus/<target>/*` (one input per
//! file, exactly the text the check receives), then searches with `arbtest`
//! for [`budget`] (about a second, or `GLEIPNIR_FUZZ_SECONDS`). Every input
//! must be handled without a panic, within [`TIME_BOUND`] and, when the test
//! binary counts allocations ([`CountingAllocator`]), allocating at most
//! [`MEMORY_BOUND`] at its peak. A failing input is saved under
//! `$TMPDIR/gleipnir-fuzz/<target>/` to be fixed and added to the corpus;
//! `ARBTEST_SEED` replays a seed that arbtest printed.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use arbitrary::{self, Arbitrary, Unstructured};

mod alloc;
pub mod structured;

pub use alloc::CountingAllocator;

/// Seconds of search per fuzz test when set.
pub const SECONDS_VAR: &str = "GLEIPNIR_FUZZ_SECONDS";
/// Search time per fuzz test by default: short, since every test run
/// (`cargo xtask test`, CI) runs them.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(1200);
/// The longest one input may take (in a debug build, on a busy machine).
pub const TIME_BOUND: Duration = Duration::from_millis(100);
/// The most one input may have allocated at once.
pub const MEMORY_BOUND: i64 = 64 << 20;

/// How long each fuzz test searches.
pub fn budget() -> Duration {
    match std::env::var(SECONDS_VAR) {
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Duration::from_secs_f64(seconds),
            _ => panic!("{SECONDS_VAR}=`{text}` is not a number of seconds"),
        },
        Err(_) => DEFAULT_BUDGET,
    }
}

/// Where the committed inputs of `target` are.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

/// The committed inputs of `target`, by file name.
pub fn corpus(target: &str) -> Vec<(String, String)> {
    let dir = corpus_dir(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut cases: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let path = e.path();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("corpus file {} cannot be read: {err}", path.display()));
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    cases.sort();
    cases
}

/// Replays `target`'s corpus through `check`, then feeds it generated
/// inputs for [`budget`]; each input within the time and memory bounds.
pub fn fuzz(target: &str, generate: impl Fn(&mut Unstructured<'_>) -> arbitrary::Result<String>, check: impl Fn(&str)) {
    alloc::ensure_counting(target);
    let slowest = std::cell::Cell::new(Duration::ZERO);
    let count = std::cell::Cell::new(0u64);
    let record = |took: Duration| {
        slowest.set(slowest.get().max(took));
        count.set(count.get() + 1);
    };
    for (name, input) in corpus(target) {
        record(bounded(target, &format!("corpus file {name}"), &input, &check));
    }
    arbtest::arbtest(|u| {
        let input = generate(u)?;
        record(bounded(target, "a generated input", &input, &check));
        Ok(())
    })
    .budget(budget())
    .run();
    // Shown with `--nocapture`: how close the slowest input came to the bound.
    eprintln!("fuzz target `{target}`: {} inputs, the slowest took {:?}", count.get(), slowest.get());
}

/// Runs `check(input)` and returns how long it took; panics (after saving
/// the input) when it panics, allocates too much, or is slow three times in
/// a row (once could be the scheduler; three times is the input).
pub fn bounded(target: &str, what: &str, input: &str, check: &impl Fn(&str)) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let before = alloc::start();
        let start = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(input)));
        let took = start.elapsed();
        let peak = alloc::peak_since(before);
        if let Err(panic) = outcome {
            report(target, what, input, "panicked");
            resume_unwind(panic);
        }
        if peak > MEMORY_BOUND {
            let saved = report(target, what, input, &format!("allocated {} MiB at its peak", peak >> 20));
            panic!("fuzz target `{target}`: {what} allocated {peak} bytes at its peak (bound {MEMORY_BOUND}); {saved}");
        }
        if took <= TIME_BOUND {
            return took;
        }
        slowest = slowest.max(took);
    }
    let saved = report(target, what, input, &format!("took {slowest:?}"));
    panic!("fuzz target `{target}`: {what} took {slowest:?} three times (bound {TIME_BOUND:?}); {saved}");
}

/// Saves a failing input and says where; returns that sentence.
fn report(target: &str, what: &str, input: &str, problem: &str) -> String {
    let dir = std::env::temp_dir().join("gleipnir-fuzz").join(target);
    let path = dir.join(format!("{:016x}.txt", fnv1a(input.as_bytes())));
    let saved = match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => format!("input saved to {}; once fixed, add it to {}", path.display(), corpus_dir(target).display()),
        Err(e) => format!("input not saved ({e}): {input:?}"),
    };
    eprintln!("fuzz target `{target}`: {what} {problem}; {saved}");
    saved
}

/// A stable name for an input (FNV-1a, 64 bits).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;

    #[test]
    fn a_slow_input_fails_and_a_fast_one_passes() {
        bounded("self-test", "a fast input", "x", &|_| {});
        let slow = catch_unwind(|| bounded("self-test", "a slow input", "x", &|_| std::thread::sleep(TIME_BOUND * 2)));
        let message = slow.expect_err("too slow").downcast::<String>().expect("a message");
        assert!(message.contains("three times"), "{message}");
    }

    #[test]
    fn a_memory_hog_fails() {
        let hog = catch_unwind(|| {
            bounded("self-test", "a hog", "x", &|_| drop(std::hint::black_box(vec![0u8; (MEMORY_BOUND + 1) as usize])))
        });
        let message = hog.expect_err("too much memory").downcast::<String>().expect("a message");
        assert!(message.contains("at its peak"), "{message}");
    }
}
