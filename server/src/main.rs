//! The `switchboard` binary. For now it only reports its version; the server arrives with the
//! server issue.

fn main() {
    println!("switchboard {}", env!("CARGO_PKG_VERSION"));
}
