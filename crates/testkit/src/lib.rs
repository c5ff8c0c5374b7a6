//! Test support for Confab: runs the test identity provider (`tests/idp`, Node + oidc-provider)
//! as a child process and completes logins headlessly over HTTP (feature `idp`); runs the Django
//! test backend of the password profile (`tests/backends/django`, Django + DRF + SimpleJWT under
//! gunicorn; [`django`], feature `django`); runs the real app's desktop session, bus, keyring and
//! WebDriver server ([`desktop`], feature `desktop`); runs Redis, Centrifugo nodes and nginx for
//! the scale-out tests ([`cluster`], feature `cluster`, which takes `idp` and `desktop`). All are
//! on by default; `cargo xtask` takes only `desktop`, which needs nothing beyond the standard
//! library.
//!
//! ```no_run
//! # async fn demo() -> confab_testkit::Result<()> {
//! use confab_testkit::{headless_login, Idp, IdpOptions};
//!
//! let idp = Idp::start(IdpOptions::default()).await?;
//! let request = idp.authorization_request("dev.confab.chat:/oauth/callback", Some("bob"));
//! let callback = headless_login(&request.url, "dev.confab.chat:/oauth/callback").await?;
//! // deliver `callback` to the app, or exchange its code:
//! let tokens = idp.login("alice").await?;
//! # Ok(()) }
//! ```

#[cfg(any(feature = "idp", feature = "django"))]
mod child;
#[cfg(feature = "cluster")]
pub mod cluster;
#[cfg(feature = "desktop")]
pub mod desktop;
#[cfg(feature = "django")]
pub mod django;
pub mod error;
#[cfg(feature = "idp")]
pub mod idp;
#[cfg(feature = "idp")]
pub mod login;
#[cfg(feature = "idp")]
pub mod oauth;

#[cfg(feature = "django")]
pub use django::{django_dir, Django, DjangoOptions, DjangoStats, DJANGO_CHAT_AUDIENCE};
#[cfg(feature = "desktop")]
pub use error::DesktopError;
#[cfg(feature = "cluster")]
pub use error::{ClusterError, ClusterResult};
#[cfg(feature = "django")]
pub use error::{DjangoError, DjangoResult};
#[cfg(feature = "idp")]
pub use error::{Error, Result};
#[cfg(feature = "idp")]
pub use idp::{
    idp_dir, Idp, IdpMode, IdpOptions, IdpStats, CHAT_RESOURCE, CLIENT_ID, DEFAULT_AUDIENCE,
    PRIVATE_USE_REDIRECT_URI,
};
#[cfg(feature = "idp")]
pub use login::{
    headless_login, headless_login_as, headless_login_interactive, headless_logout, with_login_hint,
};
#[cfg(feature = "idp")]
pub use oauth::{
    jwt_claims, jwt_header, pkce_challenge, AuthorizationRequest, CallbackParams, TokenSet,
    DEFAULT_SCOPE,
};
