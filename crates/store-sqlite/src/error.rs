use rusqlite::ErrorCode;
use stele_store::StoreError;

/// Maps a driver error onto the store's vocabulary. The text stays in the error for the log;
/// the HTTP layer never shows it to a client.
pub fn map_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => StoreError::Conflict(e.to_string()),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        },
        _ => StoreError::Other(e.to_string()),
    }
}
