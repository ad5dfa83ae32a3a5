//! The committed ABIs, parsed once, for what the typed bindings do not give by name: custom errors by
//! selector (to decode a revert from any of the three contracts) and event names by topic.

use std::{collections::HashMap, sync::OnceLock};

use alloy::{
    json_abi::{Error, JsonAbi},
    primitives::{B256, Selector},
};

struct Index {
    errors: HashMap<Selector, Error>,
    events: HashMap<B256, &'static str>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct Artifact {
            abi: JsonAbi,
        }
        let mut index = Index {
            errors: HashMap::new(),
            events: HashMap::new(),
        };
        for text in [
            include_str!("../artifacts/UMC.json"),
            include_str!("../artifacts/TMC.json"),
            include_str!("../artifacts/MMC.json"),
        ] {
            let artifact: Artifact = serde_json::from_str(text).expect("committed artifact is valid JSON ABI");
            // Items shared through Consortium appear in all three ABIs with the same selector.
            for err in artifact.abi.errors() {
                index.errors.entry(err.selector()).or_insert_with(|| err.clone());
            }
            for ev in artifact.abi.events() {
                index
                    .events
                    .entry(ev.selector())
                    .or_insert_with(|| Box::leak(ev.name.clone().into_boxed_str()));
            }
        }
        index
    })
}

/// The custom error with this selector, from any of the three contracts.
pub(crate) fn error(selector: Selector) -> Option<&'static Error> {
    index().errors.get(&selector)
}

/// The name of the event with this first topic.
pub(crate) fn event_name(topic0: B256) -> Option<&'static str> {
    index().events.get(&topic0).copied()
}
