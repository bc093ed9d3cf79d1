//! What one protection may use: the per-call limits an operator may tune
//! ([`Limits`]) and the structural limits of its store, which allow what a
//! protection built with `gleipnir-sdk` needs and little more.

use std::time::Duration;

use wasmtime::{StoreLimits, StoreLimitsBuilder};

use crate::kv::KvLimits;

/// How often the engine's epoch advances; the granularity of call deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// What one protection may use per call and in total.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time one call may take before it is interrupted.
    pub call_deadline: Duration,
    /// Wall-clock time one pre-emptive `check` may take (the homeserver
    /// waits on it); rounded up to the epoch tick of 5 ms.
    pub check_deadline: Duration,
    /// Linear memory, in bytes, across the protection's instance.
    pub memory_bytes: usize,
    /// Actions one call may return; a reply with more is refused whole.
    pub max_actions: usize,
    pub kv: KvLimits,
    /// Core module instances in the protection's store (a component built
    /// by another language's toolchain may need more than a Rust one).
    pub instances: usize,
    /// Tables in the store, and elements of each.
    pub tables: usize,
    pub table_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_deadline: Duration::from_millis(50),
            check_deadline: Duration::from_millis(5),
            memory_bytes: 32 << 20,
            max_actions: 1000,
            kv: KvLimits::default(),
            instances: MAX_INSTANCES,
            tables: MAX_TABLES,
            table_elements: MAX_TABLE_ELEMENTS,
        }
    }
}

impl Limits {
    /// Epoch ticks for one call, rounding up, plus one because the current
    /// tick may be about to end.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        ticks(self.call_deadline)
    }

    /// Epoch ticks for one `check`, the same way.
    pub(crate) fn check_ticks(&self) -> u64 {
        ticks(self.check_deadline)
    }
}

fn ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1) + 1
}

impl Limits {}

// What a protection built with gleipnir-sdk (Rust, wasm32-wasip2) is made
// of, measured on every plugin in this repository: 3 core instances (the
// program, and wit-component's shim and fixup modules), 1 linear memory of
// about 1 MiB at start, 2 tables of about 20 and 100 elements. The limits
// leave room for larger programs and other toolchains, not for more.

/// Core module instances in one store, unless the operator sets more for a
/// protection.
pub(crate) const MAX_INSTANCES: usize = 8;
/// Linear memories in one store: with one, `memory_bytes` is the whole.
pub(crate) const MAX_MEMORIES: usize = 1;
/// Tables in one store.
pub(crate) const MAX_TABLES: usize = 4;
/// Elements of one table (8 bytes each on the host): at most 4 × 10,000
/// elements, 320 KiB, outside the linear memory cap.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 10_000;
/// Native stack wasm code may use; deeper recursion traps as a stack
/// overflow. Rust guests keep their own stack in linear memory, so this
/// holds only wasm frames.
pub(crate) const MAX_WASM_STACK: usize = 256 << 10;
/// Bytes a protection may hand the host in one host call or return value
/// (wasmtime's default is 128 MiB): 1,000 actions, a log line or a stored
/// value are far below it; 100,000 actions still fit, so that reply is
/// refused by `max_actions` rather than trapped.
pub(crate) const HOSTCALL_FUEL: usize = 32 << 20;

/// The limiter of one protection's store.
pub(crate) fn store_limits(limits: &Limits) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(limits.memory_bytes)
        .instances(limits.instances)
        .memories(MAX_MEMORIES)
        .tables(limits.tables)
        .table_elements(limits.table_elements)
        .trap_on_grow_failure(true)
        .build()
}

#[cfg(test)]
mod tests {
    //! Rust cannot ask for a second memory or grow a table, so these are
    //! hand-assembled core modules, instantiated in a protection's store.

    use std::sync::Arc;

    use crate::kv::KvStore;
    use crate::store::{NoQueries, new_store};
    use crate::{Runtime, RuntimeConfig};

    fn leb(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A core module from its sections, `(id, contents)`, in the binary format.
    fn module(sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        for (id, body) in sections {
            bytes.push(*id);
            leb(&mut bytes, body.len() as u64);
            bytes.extend(body);
        }
        bytes
    }

    /// A section holding `count` funcref tables of `min` elements.
    fn tables(count: u8, min: u64) -> (u8, Vec<u8>) {
        let mut body = vec![count];
        for _ in 0..count {
            body.extend([0x70, 0x00]);
            leb(&mut body, min);
        }
        (4, body)
    }

    /// A module with one table of one element and `grow() -> i32`, which
    /// grows it by `by` elements (`table.grow`) and returns the old size.
    fn growing_table(by: u32) -> Vec<u8> {
        let mut code = vec![0x00, 0xd0, 0x70, 0x41];
        // i32.const takes a signed LEB; the values used here are positive and below 2^31.
        let mut value = by as u64;
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 && byte & 0x40 == 0 {
                code.push(byte);
                break;
            }
            code.push(byte | 0x80);
        }
        code.extend([0xfc, 0x0f, 0x00, 0x0b]);
        let mut body = vec![0x01];
        leb(&mut body, code.len() as u64);
        body.extend(code);
        module(&[
            (1, vec![0x01, 0x60, 0x00, 0x01, 0x7f]),
            (3, vec![0x01, 0x00]),
            tables(1, 1),
            (7, vec![0x01, 0x04, b'g', b'r', b'o', b'w', 0x00, 0x00]),
            (10, body),
        ])
    }

    /// Instantiates `bytes` in a fresh protection store and calls its
    /// `grow` export when it has one.
    fn run(bytes: &[u8]) -> wasmtime::Result<Option<i32>> {
        let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let module = wasmtime::Module::new(&runtime.engine, bytes)?;
        let kv = KvStore::new(runtime.limits.kv);
        let mut store = new_store(&runtime, &runtime.limits(), "limits".into(), Arc::new(NoQueries), kv);
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        match instance.get_typed_func::<(), i32>(&mut store, "grow") {
            Ok(grow) => grow.call(&mut store, ()).map(Some),
            Err(_) => Ok(None),
        }
    }

    #[test]
    fn one_memory_and_a_few_small_tables_are_allowed() {
        let one_memory = module(&[(5, vec![0x01, 0x00, 0x01])]);
        assert_eq!(run(&one_memory).expect("one memory"), None);
        assert_eq!(run(&module(&[tables(4, 10_000)])).expect("four tables of 10,000"), None);
        assert_eq!(run(&growing_table(1000)).expect("growing a table to 1,001"), Some(1));
    }

    #[test]
    fn a_second_memory_is_refused() {
        let two_memories = module(&[(5, vec![0x02, 0x00, 0x01, 0x00, 0x01])]);
        let err = run(&two_memories).unwrap_err();
        assert!(format!("{err:#}").contains("memory count too high"), "{err:#}");
    }

    #[test]
    fn more_tables_or_larger_ones_are_refused() {
        let err = run(&module(&[tables(5, 1)])).unwrap_err();
        assert!(format!("{err:#}").contains("table count too high"), "{err:#}");
        let err = run(&module(&[tables(1, 10_001)])).unwrap_err();
        assert!(format!("{err:#}").contains("table"), "{err:#}");
    }

    #[test]
    fn growing_a_table_past_the_limit_traps() {
        let err = run(&growing_table(100_000)).unwrap_err();
        assert!(format!("{err:#}").contains("forcing trap when growing table"), "{err:#}");
    }
}
