pub mod inspect;
pub mod probes;
