//! [`Core`]: the sign-in flow and the chat hub of one app, wired together.

use std::sync::Arc;

use confab_config::AppConfig;
use tokio::runtime::Handle;
use tokio::sync::watch;
use url::Url;

use crate::chat::ChatHub;
use crate::platform::{AppPaths, Platform};
use crate::signin::{RedirectPlan, SignInFlow};

/// Path of the identity provider's return from RP-initiated logout (`<scheme>:/oauth/logout`).
const LOGOUT_RETURN_PATH: &str = "/oauth/logout";

/// The app's services: what the shell manages and forwards its commands to.
pub struct Core {
    /// Sign-in, vault lifecycle and session.
    pub flow: Arc<SignInFlow>,
    /// Chat for the signed-in session.
    pub chat: Arc<ChatHub>,
    rt: Handle,
}

impl Core {
    /// Builds the services for `config` (or the configuration error to show). `plan` says how
    /// redirects come back once the shell has decided (`None` until then); background tasks
    /// run on `rt`. Nothing starts until [`Core::start`].
    pub fn new(
        config: std::result::Result<AppConfig, String>,
        paths: AppPaths,
        plan: watch::Receiver<Option<RedirectPlan>>,
        platform: Arc<dyn Platform>,
        rt: Handle,
    ) -> Self {
        // The data dir (vault, account stores, settings) and the logs are the user's alone.
        for dir in [&paths.data_dir, &paths.log_dir] {
            if let Err(e) = confab_store::owner_only_dir(dir) {
                tracing::warn!("cannot make {} owner-only: {e}", dir.display());
            }
        }
        let chat_url = config
            .as_ref()
            .map(|c| c.chat_url.to_string())
            .map_err(Clone::clone);
        let token_endpoint = config.as_ref().ok().and_then(|c| {
            c.token_endpoint()
                .map(|endpoint| (endpoint, c.chat_token_shape.clone()))
        });
        let cache_per_room = config
            .as_ref()
            .map(|c| c.history_cache_per_room)
            .unwrap_or(confab_config::DEFAULT_HISTORY_CACHE_PER_ROOM);
        let chat = ChatHub::new(
            platform.clone(),
            rt.clone(),
            paths.data_dir.clone(),
            chat_url,
            token_endpoint,
            cache_per_room,
        );
        let flow = SignInFlow::new(config, paths, plan, platform, rt.clone());
        flow.set_observer(chat.clone());
        Self { flow, chat, rt }
    }

    /// Whether the first screen is "Sign in" (no remembered account, keychain key): the shell
    /// tells the window at creation so the page shows it in its first frame.
    pub fn sign_in_first(&self) -> bool {
        self.flow.show_sign_in_first()
    }

    /// Opens the vault (keychain or passphrase prompt), then restores the remembered session,
    /// in the background.
    pub fn start(&self) {
        let flow = self.flow.clone();
        self.rt.spawn(async move { flow.open_vault().await });
    }

    /// A redirect delivered by the OS (deep link, or the link that launched the app). The URL
    /// carries an authorization code: never log it. The provider's return from RP-initiated
    /// logout needs nothing.
    pub fn deliver_redirect(&self, url: Url) {
        if url.path() == LOGOUT_RETURN_PATH {
            tracing::info!("back from the provider's logout page");
            return;
        }
        let flow = self.flow.clone();
        self.rt
            .spawn(async move { flow.complete(url.as_str()).await });
    }

    /// The window gained or lost focus. Focus back (often after resume from sleep) makes the
    /// session re-check its refresh schedule against the wall clock and the relay skip its
    /// reconnect delay.
    pub fn window_focused(&self, focused: bool) {
        if focused {
            self.flow.notify_resume();
        }
        self.chat.set_focused(focused);
    }

    /// The OS resumed the app from the background (mobile): re-check the session now.
    pub fn resumed(&self) {
        tracing::info!("resumed from the background: re-checking the session");
        self.flow.notify_resume();
    }
}
