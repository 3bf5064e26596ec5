//! Routing: the fit filter and the five strategies.
