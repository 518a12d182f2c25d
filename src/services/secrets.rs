//! Secrets: private links, API tokens and passwords. Only hashes are stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

// ---------------------------------------------------------------------------------------------
// Secrets: private links and API tokens. Only their SHA-256 is stored.

/// 256 random bits, hex-encoded.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// argon2id at OWASP's floor (19 MiB, 2 iterations, 1 lane), spelt out rather than taken from
/// the crate's defaults so that a dependency update cannot weaken stored hashes unnoticed.
pub fn password_hasher() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("fixed argon2 parameters are valid");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub fn hash_password(password: &str) -> AppResult<String> {
    use argon2::password_hash::PasswordHasher;
    password_hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("password hashing: {e}")))
}
