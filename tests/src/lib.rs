//! Black-box tests of the whole switchboard system live in `tests/tests/`; this library holds their shared helpers.
