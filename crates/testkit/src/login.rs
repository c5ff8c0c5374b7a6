//! Completes a login at the test IdP over plain HTTP, the way a browser would, and hands back the
//! redirect to the app WITHOUT requesting it (delivering it is the caller's job, as the OS does).

use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Client, Method, StatusCode};
use url::Url;

use crate::error::{Error, Result};

/// Redirects and form posts followed before giving up.
pub const MAX_HOPS: usize = 20;
/// Deadline of a whole headless login.
pub const LOGIN_DEADLINE: Duration = Duration::from_secs(30);
/// Timeout of each request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Follows the IdP's redirects for `authorize_url` (auto-mode IdP) until one leaves the IdP, and
/// returns that URL unrequested. It must start with `redirect_prefix` (e.g.
/// `dev.confab.chat:/oauth/callback` or `http://127.0.0.1:4567/callback`).
///
/// The user is the authorize URL's `login_hint` (alice without one); see [`headless_login_as`].
/// An `error=` callback (e.g. `access_denied` for an unknown user) is returned like any other
/// callback: the caller inspects it.
pub async fn headless_login(authorize_url: &Url, redirect_prefix: &str) -> Result<Url> {
    drive(authorize_url, None, Some(redirect_prefix)).await
}

/// [`headless_login`] as `user`: sets (or replaces) `login_hint` in the authorize URL first. Use
/// this with URLs built by the app, which carry no login hint.
pub async fn headless_login_as(
    authorize_url: &Url,
    user: &str,
    redirect_prefix: &str,
) -> Result<Url> {
    drive(
        &with_login_hint(authorize_url, user),
        None,
        Some(redirect_prefix),
    )
    .await
}

/// Drives an interactive-mode IdP (the demo): fills in the login form with `user` and `password`
/// and allows the consent page, then returns the first redirect that leaves the IdP, unrequested.
/// A rejected password is an error.
pub async fn headless_login_interactive(
    authorize_url: &Url,
    user: &str,
    password: &str,
) -> Result<Url> {
    drive(authorize_url, Some((user, password)), None).await
}

/// Completes RP-initiated logout at `end_session_url` (the IdP's `end_session_endpoint` with
/// `id_token_hint`, `post_logout_redirect_uri`, `state`, ...): confirms "sign out" like a user
/// would and returns the redirect to `post_logout_redirect_uri`, unrequested. `None` when the IdP
/// ends on its own "signed out" page (no `post_logout_redirect_uri` given).
pub async fn headless_logout(end_session_url: &Url) -> Result<Option<Url>> {
    tokio::time::timeout(LOGIN_DEADLINE, logout_inner(end_session_url))
        .await
        .map_err(|_| Error::LoginTimeout {
            seconds: LOGIN_DEADLINE.as_secs(),
        })?
}

async fn logout_inner(end_session_url: &Url) -> Result<Option<Url>> {
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let idp_origin = end_session_url.origin();
    let mut step = Step::Get(end_session_url.clone());
    let mut confirmed = false;
    for hop in 0..MAX_HOPS {
        let fail = |reason: String| Error::Login {
            hops: hop,
            at: step.url().path().to_owned(),
            reason,
        };
        let response = match &step {
            Step::Get(url) => client.get(url.clone()).send().await?,
            Step::Post(url, form) => client.post(url.clone()).form(form).send().await?,
        };
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| fail(format!("{status} without a usable Location header")))?;
            let target = step
                .url()
                .join(location)
                .map_err(|e| fail(format!("unparsable Location ({e})")))?;
            if target.origin() != idp_origin {
                return Ok(Some(target));
            }
            step = Step::Get(target);
            continue;
        }
        let page_url = step.url().clone();
        let body = response.text().await?;
        if !status.is_success() {
            return Err(fail(format!("IdP answered {status}: {}", page_text(&body))));
        }
        let confirm = form_actions(&body)
            .into_iter()
            .find(|a| a.ends_with("/session/end/confirm"))
            .and_then(|a| page_url.join(&a).ok());
        match confirm {
            Some(action) if !confirmed => {
                confirmed = true;
                let mut form: Vec<(&'static str, String)> = Vec::new();
                if let Some(xsrf) = hidden_value(&body, "xsrf") {
                    form.push(("xsrf", xsrf));
                }
                form.push(("logout", "yes".to_owned()));
                step = Step::Post(action, form);
            }
            Some(_) => return Err(fail("logout confirmation shown twice".to_owned())),
            None if confirmed => return Ok(None),
            None => {
                return Err(fail(format!(
                    "page has no logout confirmation form: {}",
                    page_text(&body)
                )))
            }
        }
    }
    Err(Error::Login {
        hops: MAX_HOPS,
        at: step.url().path().to_owned(),
        reason: format!("logout did not finish after {MAX_HOPS} hops"),
    })
}

/// Value of the `<input name="{name}" value="...">` in an HTML page.
fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let rest = &html[html.find(&marker)? + marker.len()..];
    let rest = &rest[rest.find("value=\"")? + "value=\"".len()..];
    rest.split('"').next().map(str::to_owned)
}

/// `authorize_url` with its `login_hint` set to `user`.
pub fn with_login_hint(authorize_url: &Url, user: &str) -> Url {
    let pairs: Vec<(String, String)> = authorize_url
        .query_pairs()
        .filter(|(k, _)| k != "login_hint")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = authorize_url.clone();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("login_hint", user);
    url
}

enum Step {
    Get(Url),
    Post(Url, Vec<(&'static str, String)>),
}

impl Step {
    fn url(&self) -> &Url {
        match self {
            Step::Get(url) | Step::Post(url, _) => url,
        }
    }
}

async fn drive(
    authorize_url: &Url,
    credentials: Option<(&str, &str)>,
    redirect_prefix: Option<&str>,
) -> Result<Url> {
    tokio::time::timeout(
        LOGIN_DEADLINE,
        drive_inner(authorize_url, credentials, redirect_prefix),
    )
    .await
    .map_err(|_| Error::LoginTimeout {
        seconds: LOGIN_DEADLINE.as_secs(),
    })?
}

async fn drive_inner(
    authorize_url: &Url,
    credentials: Option<(&str, &str)>,
    redirect_prefix: Option<&str>,
) -> Result<Url> {
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let idp_origin = authorize_url.origin();
    let mut step = Step::Get(authorize_url.clone());
    let mut login_posted = false;

    for hop in 0..MAX_HOPS {
        let fail = |reason: String| Error::Login {
            hops: hop,
            at: step.url().path().to_owned(),
            reason,
        };
        let response = match &step {
            Step::Get(url) => client.request(Method::GET, url.clone()).send().await?,
            Step::Post(url, form) => client.post(url.clone()).form(form).send().await?,
        };
        let status = response.status();

        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| fail(format!("{status} without a usable Location header")))?;
            let target = step
                .url()
                .join(location)
                .map_err(|e| fail(format!("unparsable Location ({e})")))?;
            let leaves_idp = target.origin() != idp_origin;
            let at_prefix = redirect_prefix.is_some_and(|p| target.as_str().starts_with(p));
            if leaves_idp || at_prefix {
                if let Some(prefix) = redirect_prefix {
                    if !at_prefix {
                        return Err(fail(format!(
                            "redirected to {}{} which does not start with {prefix}",
                            scheme_host(&target),
                            target.path()
                        )));
                    }
                }
                return Ok(target);
            }
            step = Step::Get(target);
            continue;
        }

        let page_url = step.url().clone();
        let body = response.text().await?;
        let text = page_text(&body);
        if !(status == StatusCode::OK || status == StatusCode::UNAUTHORIZED) {
            return Err(fail(format!("IdP answered {status}: {text}")));
        }
        let Some((user, password)) = credentials else {
            return Err(fail(format!(
                "IdP answered {status} with a page instead of a redirect (an interactive-mode IdP \
                 needs headless_login_interactive): {text}"
            )));
        };
        let actions = form_actions(&body);
        let find = |suffix: &str| {
            actions
                .iter()
                .find(|a| a.ends_with(suffix))
                .and_then(|a| page_url.join(a).ok())
        };
        if let Some(login) = find("/login") {
            if login_posted {
                return Err(fail(format!(
                    "login as {user:?} was rejected (unknown user or wrong password): {text}"
                )));
            }
            login_posted = true;
            step = Step::Post(
                login,
                vec![
                    ("username", user.to_owned()),
                    ("password", password.to_owned()),
                ],
            );
        } else if let Some(confirm) = find("/confirm") {
            step = Step::Post(confirm, vec![("decision", "allow".to_owned())]);
        } else {
            return Err(fail(format!(
                "page has neither a login nor a consent form: {text}"
            )));
        }
    }

    Err(Error::Login {
        hops: MAX_HOPS,
        at: step.url().path().to_owned(),
        reason: format!("no redirect out of the IdP after {MAX_HOPS} hops"),
    })
}

fn scheme_host(url: &Url) -> String {
    match url.host_str() {
        Some(host) => match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        },
        None => format!("{}:", url.scheme()),
    }
}

/// `action` attributes of the forms in an HTML page.
fn form_actions(html: &str) -> Vec<String> {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|a| a.replace("&amp;", "&"))
        .collect()
}

/// Visible text of an HTML page, whitespace collapsed and cut to a readable length.
fn page_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let body = html.split("</head>").last().unwrap_or(html);
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hint_is_replaced_not_duplicated() {
        let url = Url::parse("http://127.0.0.1:1/auth?client_id=c&login_hint=alice&state=s")
            .expect("test URL parses");
        let out = with_login_hint(&url, "bob");
        let hints: Vec<_> = out
            .query_pairs()
            .filter(|(k, _)| k == "login_hint")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(hints, vec!["bob"], "exactly one login_hint, the new user");
        assert!(
            out.query_pairs().any(|(k, v)| k == "state" && v == "s"),
            "other parameters survive"
        );
    }

    #[test]
    fn page_text_drops_markup() {
        let text = page_text(
            "<html><head><title>x</title></head><body><p>Unknown <b>user</b></p></body></html>",
        );
        assert_eq!(text, "Unknown user", "only visible text is reported");
    }
}
