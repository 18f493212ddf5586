//! Node.js binding of udpcom (placeholder while the engine is built).
