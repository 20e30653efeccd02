//! Store errors: one flat enum. Each variant names the operation and how it failed; each
//! carries one sentence naming the store file or store.

use std::fmt;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Opening: the file does not exist and the caller did not ask to create it.
    OpenMissing(String),
    /// Opening: the file is not a store this version can use, and could not be set aside.
    OpenCorrupt(String),
    /// Opening: the engine or the file system refused (permissions, a locked file, ...).
    OpenFailed(String),
    /// A name (of a store file or a store inside it) is empty or has characters other than
    /// letters, digits, `_`, `-` and `.`.
    NameInvalid(String),
    /// Writing (append, put, set, delete) failed.
    WriteFailed(String),
    /// Reading failed.
    ReadFailed(String),
    /// Committing a transaction failed: nothing of it was kept.
    CommitFailed(String),
    /// A transaction was used wrongly (begin inside a batch, commit without one).
    TransactionMisuse(String),
    /// A file-system operation around the engine failed (moving a corrupt file aside,
    /// creating the store directory).
    IoFailed(String),
}

impl StoreError {
    /// The sentence, without the variant.
    pub fn message(&self) -> &str {
        match self {
            StoreError::OpenMissing(m)
            | StoreError::OpenCorrupt(m)
            | StoreError::OpenFailed(m)
            | StoreError::NameInvalid(m)
            | StoreError::WriteFailed(m)
            | StoreError::ReadFailed(m)
            | StoreError::CommitFailed(m)
            | StoreError::TransactionMisuse(m)
            | StoreError::IoFailed(m) => m,
        }
    }

    /// A stable short name of the variant, for bindings and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::OpenMissing(_) => "open_missing",
            StoreError::OpenCorrupt(_) => "open_corrupt",
            StoreError::OpenFailed(_) => "open_failed",
            StoreError::NameInvalid(_) => "name_invalid",
            StoreError::WriteFailed(_) => "write_failed",
            StoreError::ReadFailed(_) => "read_failed",
            StoreError::CommitFailed(_) => "commit_failed",
            StoreError::TransactionMisuse(_) => "transaction_misuse",
            StoreError::IoFailed(_) => "io_failed",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StoreError {}

/// Checks a name used in a file name or as a store name inside a file.
pub fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::NameInvalid(format!(
            "{what} name {name:?} is not usable: use 1 to 128 letters, digits, '_', '-' or '.', not starting with '.'"
        )))
    }
}
