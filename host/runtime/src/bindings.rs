//! The one place that runs `bindgen!` for the WIT world; every other module
//! uses these types.

wasmtime::component::bindgen!({
    path: "../../wit/0.1.0",
    world: "plugin",
    additional_derives: [PartialEq],
});
