//! The process's TLS crypto provider, which every reqwest client needs before it is built:
//! upstream providers, MCP servers and tools, and specs a config names by URL.

/// Installs the process's TLS provider (ring); reqwest is built without one of its own, and
/// installing it twice is harmless.
pub fn install_tls_provider() {
    // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange. The
    // alternative, aws-lc-rs, needs a C toolchain and minutes more per cold build; connections to
    // model providers keep ring's X25519 until that trade is made on purpose (ARCHITECTURE.md).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}
