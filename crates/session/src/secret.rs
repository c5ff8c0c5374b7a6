//! [`Secret`]: the type tokens travel in inside this crate.

confab_types::new_secret_type! {
    /// A token (access, refresh or ID token), made with confab-types' `new_secret_type!`:
    /// `Debug` prints `Secret([redacted])`, there is no `Display` and no `Serialize`, `==` is
    /// constant-time, and the bytes are overwritten on drop. Read it with
    /// [`Secret::expose_secret`] only where it has to leave the process (HTTP request, vault).
    pub struct Secret(String);
}
