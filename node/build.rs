//! Link flags for a Node-API addon (symbols resolved by the host `node` process at load).
fn main() {
    napi_build::setup();
}
