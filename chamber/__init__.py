"""Council-chamber voting system: the domain core (chamber.core), journal, store, engine, config and CLI."""
