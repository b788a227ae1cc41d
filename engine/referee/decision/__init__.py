"""Decision: rule packs, CEL conditions (evaluated in Rust) and the verdict they combine into."""
