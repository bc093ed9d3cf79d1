//! Contract tests of `panic-in-constructor`: a protection whose static
//! constructor panics (after writing to stderr) while it is instantiated is
//! refused with a load error, wherever it is loaded from.

use super::*;

pub(super) fn covered() {}

fn is_refused() {
    let err = gleipnir_tests::runtime().load_file(plugins::PANIC_IN_CONSTRUCTOR.as_ref()).unwrap_err();
    assert!(
        matches!(&err, LoadError::Instantiate(Fault::Trap { call: "instantiate", message }) if message.contains("panicked")),
        "{err:?}"
    );
}

#[test]
fn outside_tokio() {
    is_refused();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_multi_thread_runtime() {
    tokio::spawn(async { is_refused() }).await.expect("no panic on a worker");
    is_refused();
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime() {
    is_refused();
}
