//! An exact in-memory geo index: nearest points within a radius, by H3 cells and haversine distance.
