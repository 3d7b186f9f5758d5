//! Fuzz target: any byte string through strict decoding and the full gate. It must never panic, and every
//! allowed request must re-encode to a body that the gate allows again with the same decision.
#![no_main]

use deploy_runner_gate::{Gate, Policy};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        Gate::new(Policy::from_json(include_str!("../../examples/policy.json")).expect("example policy"))
    })
}

fuzz_target!(|body: &[u8]| {
    let outcome = gate().evaluate(body);
    if let Some(admitted) = outcome.admitted {
        let again = gate().evaluate(admitted.request.to_json().to_string().as_bytes());
        assert_eq!(again.decision, outcome.decision, "re-encoding changed the decision");
    }
});
