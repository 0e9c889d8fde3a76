//! Consumer groups: the group coordinator (placeholder while being built).
pub mod group;
#[cfg(test)]
mod tests;
