//! The engine actor.
