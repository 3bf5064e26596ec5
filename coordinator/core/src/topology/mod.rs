//! Topology revisions.
