//! Schedule evaluation: is a hub awake now, and when does that change?
