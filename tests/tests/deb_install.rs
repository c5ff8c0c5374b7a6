//! E2E of the Linux package: the `.deb` built by `cargo xtask bundle --debug` is installed into
//! this machine with `dpkg -i` and removed again afterwards (also when the test fails).
//!
//! Checked: the package declares a Debian package for every shared library the binary loads
//! (`dpkg -I`), installs nothing outside an explicit allow-list (`dpkg -L`), ships a desktop
//! entry that claims `x-scheme-handler/dev.confab.chat` with `Exec=confab %u`, and in a fresh
//! HOME `xdg-mime` names that entry as the scheme's handler. Then the INSTALLED binary
//! (`/usr/bin/confab`) runs under Xvfb with a private session bus; Sign in is clicked, the
//! identity provider login is completed headlessly, and the redirect is handed to the desktop's
//! URL opener (`xdg-open`), which must deliver it to the running instance: the window shows
//! "Signed in as Alice Example".
//!
//! Needs root (dpkg) and `CONFAB_DEB` (the path of the debug `.deb`); `cargo xtask test`, which CI
//! runs as root, builds the package and sets it. A debug package is needed because only debug
//! builds have the `CONFAB_TEST_OPEN_URL_FILE` hook through which the test learns the
//! authorization URL (release builds cannot be steered that way).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use confab_e2e::{query_param, AppOptions, AppUnderTest, SCHEME_REDIRECT, UI_TIMEOUT};
use confab_testkit::{headless_login, Idp, IdpOptions};

/// The Debian package name.
const PACKAGE: &str = "confab";
/// Where the package puts the app.
const INSTALLED_BINARY: &str = "/usr/bin/confab";
/// The package's desktop entry (named after `productName`).
const DESKTOP_ENTRY: &str = "Confab.desktop";
/// The MIME type under which the OS looks up the handler of `dev.confab.chat:` links.
const SCHEME_MIME: &str = "x-scheme-handler/dev.confab.chat";
/// Every file the package may install; directories on the way to them are allowed too.
const EXPECTED_FILES: &[&str] = &[
    "/usr/bin/confab",
    "/usr/share/applications/Confab.desktop",
    "/usr/share/icons/hicolor/32x32/apps/confab.png",
    "/usr/share/icons/hicolor/64x64/apps/confab.png",
    "/usr/share/icons/hicolor/128x128/apps/confab.png",
    "/usr/share/icons/hicolor/256x256/apps/confab.png",
    "/usr/share/icons/hicolor/512x512/apps/confab.png",
];

/// Runs a program to completion; panics with a clear message if it cannot be started.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run {program}: {e} (cargo xtask test installs it)"))
}

/// Stdout of a program that must succeed.
fn stdout_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` must succeed: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_installed() -> bool {
    let out = run("dpkg-query", &["-W", "-f=${Status}", PACKAGE]);
    String::from_utf8_lossy(&out.stdout).contains("install ok installed")
}

/// Removes the package when dropped, so a failing test still leaves the machine clean.
struct InstalledPackage;

impl InstalledPackage {
    fn install(deb: &Path) -> Self {
        let deb = deb.to_str().expect("the package path is UTF-8");
        let guard = InstalledPackage;
        let out = run("dpkg", &["-i", deb]);
        if !out.status.success() {
            // Missing library packages: let apt bring them in (and configure ours).
            eprintln!(
                "dpkg -i did not complete ({}), running apt-get install -f:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let fix = Command::new("apt-get")
                .args(["install", "-f", "-y", "-qq", "--no-install-recommends"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .expect("apt-get runs");
            assert!(
                fix.status.success(),
                "the package's dependencies must be installable: {}",
                String::from_utf8_lossy(&fix.stderr)
            );
        }
        assert!(is_installed(), "dpkg -i {deb} installs the package");
        guard
    }
}

impl Drop for InstalledPackage {
    fn drop(&mut self) {
        match Command::new("dpkg").args(["-r", PACKAGE]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "dpkg -r {PACKAGE} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("could not run dpkg -r {PACKAGE}: {e}"),
        }
    }
}

/// Package names in a Depends-style field (`a, b (>= 1), c | d` -> a, b, c, d).
fn package_names(field: &str) -> BTreeSet<String> {
    field
        .split([',', '|'])
        .filter_map(|p| p.split_whitespace().next())
        .map(|p| p.split(':').next().unwrap_or(p).to_owned())
        .collect()
}

/// The sonames the binary needs (ELF `NEEDED` entries).
fn needed_libraries(binary: &str) -> Vec<String> {
    stdout_ok("objdump", &["-p", binary])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED"))
        .map(|s| s.trim().to_owned())
        .collect()
}

/// The Debian package that provides the shared library `soname` on this machine.
fn package_of_library(soname: &str, ldconfig: &str) -> Option<String> {
    let path = ldconfig.lines().find_map(|l| {
        let (name, path) = l.trim().split_once(" => ")?;
        (name.split_whitespace().next() == Some(soname)).then(|| PathBuf::from(path.trim()))
    })?;
    // Merged /usr: dpkg may know the file under /lib or /usr/lib, or only its real name.
    let mut candidates = vec![path.clone()];
    if let Ok(real) = std::fs::canonicalize(&path) {
        candidates.push(real);
    }
    for p in candidates.clone() {
        let text = p.to_string_lossy().into_owned();
        match text.strip_prefix("/usr") {
            Some(rest) => candidates.push(PathBuf::from(rest)),
            None => candidates.push(PathBuf::from(format!("/usr{text}"))),
        }
    }
    candidates.iter().find_map(|p| {
        let out = run("dpkg", &["-S", p.to_str()?]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text.lines().find(|l| !l.starts_with("diversion"))?;
        let pkg = line.split(": ").next()?;
        Some(pkg.split(':').next().unwrap_or(pkg).to_owned())
    })
}

fn check_metadata_and_files(deb: &str) {
    let fields = stdout_ok("dpkg-deb", &["-f", deb, "Package", "Depends"]);
    assert!(
        fields.contains(&format!("Package: {PACKAGE}")),
        "the package is called {PACKAGE}: {fields}"
    );
    let depends_line = fields
        .lines()
        .find_map(|l| l.strip_prefix("Depends:"))
        .unwrap_or_else(|| panic!("the package declares Depends: {fields}"));
    let depends = package_names(depends_line);

    // Every shared library the installed binary loads comes from a declared dependency.
    let ldconfig = stdout_ok("ldconfig", &["-p"]);
    let mut undeclared = Vec::new();
    for soname in needed_libraries(INSTALLED_BINARY) {
        match package_of_library(&soname, &ldconfig) {
            Some(pkg) if depends.contains(&pkg) => {}
            Some(pkg) => undeclared.push(format!("{soname} (package {pkg})")),
            None => undeclared.push(format!("{soname} (no package found)")),
        }
    }
    assert!(
        undeclared.is_empty(),
        "every library the binary needs is declared in Depends ({depends_line}); missing: {undeclared:?}"
    );

    // Nothing outside the expected install paths.
    let mut allowed: BTreeSet<String> = ["/.".to_owned()].into();
    for file in EXPECTED_FILES {
        let mut p = Path::new(file);
        allowed.insert(p.display().to_string());
        while let Some(parent) = p.parent() {
            allowed.insert(parent.display().to_string());
            p = parent;
        }
    }
    let listed: BTreeSet<String> = stdout_ok("dpkg", &["-L", PACKAGE])
        .lines()
        .map(str::to_owned)
        .collect();
    let unexpected: Vec<&String> = listed.difference(&allowed).collect();
    assert!(
        unexpected.is_empty(),
        "the package installs nothing outside its allow-list: {unexpected:?}"
    );
    for file in EXPECTED_FILES {
        assert!(
            listed.contains(*file) && Path::new(file).is_file(),
            "the package installs {file}"
        );
    }

    // The desktop entry routes the scheme to the app and hands it the URL.
    let entry_path = format!("/usr/share/applications/{DESKTOP_ENTRY}");
    let entry = std::fs::read_to_string(&entry_path).expect("the desktop entry is readable");
    let key = |k: &str| {
        entry
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
    };
    assert_eq!(
        key("Exec").as_deref(),
        Some("confab %u"),
        "the desktop entry starts the installed app with the link as its argument"
    );
    let mime = key("MimeType").unwrap_or_default();
    assert!(
        mime.split(';').any(|m| m == SCHEME_MIME),
        "the desktop entry claims {SCHEME_MIME}: MimeType={mime}"
    );
    stdout_ok("desktop-file-validate", &[&entry_path]);
}

/// `xdg-mime query default` for the scheme in a fresh HOME (no per-user associations).
fn default_handler_in_fresh_home() -> String {
    let home = tempfile::tempdir().expect("temp HOME");
    let h = home.path();
    let out = Command::new("xdg-mime")
        .args(["query", "default", SCHEME_MIME])
        .env("HOME", h)
        .env("XDG_CONFIG_HOME", h.join(".config"))
        .env("XDG_DATA_HOME", h.join(".local/share"))
        .output()
        .expect("xdg-mime runs (Debian package xdg-utils)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn require_root() {
    let uid = stdout_ok("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "this test installs a package with dpkg -i and must run as root (CI runs `cargo xtask test` as root)"
    );
}

#[test]
fn installed_package_registers_the_scheme_and_signs_in_through_the_desktop() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    require_root();
    let deb = std::env::var_os("CONFAB_DEB").map(PathBuf::from).expect(
        "CONFAB_DEB must name the debug .deb: build it with `cargo xtask bundle --debug` \
         (cargo xtask test builds it and sets CONFAB_DEB)",
    );
    assert!(deb.is_file(), "CONFAB_DEB={} must exist", deb.display());
    let deb_str = deb.to_str().expect("the package path is UTF-8").to_owned();
    // The harness launches this binary; set before any thread of the runtime exists.
    std::env::set_var("CONFAB_APP_BINARY", INSTALLED_BINARY);

    if is_installed() {
        // A previous run that was killed before its cleanup.
        stdout_ok("dpkg", &["-r", PACKAGE]);
    }
    let package = InstalledPackage::install(&deb);
    let binary = std::fs::read(INSTALLED_BINARY).expect("the installed binary is readable");
    assert!(
        binary
            .windows(b"CONFAB_TEST_OPEN_URL_FILE".len())
            .any(|w| w == b"CONFAB_TEST_OPEN_URL_FILE"),
        "the package must be a debug build (`cargo xtask bundle --debug`): only those have the test hook"
    );
    drop(binary);

    check_metadata_and_files(&deb_str);
    assert_eq!(
        default_handler_in_fresh_home(),
        DESKTOP_ENTRY,
        "after installing, the OS routes {SCHEME_MIME} to the package's desktop entry"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(sign_in_with_the_installed_app());

    drop(package);
    assert!(!is_installed(), "dpkg -r removes the package");
    assert!(
        !Path::new(INSTALLED_BINARY).exists(),
        "removing the package removes {INSTALLED_BINARY}"
    );
}

async fn sign_in_with_the_installed_app() {
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the installed app starts under WebDriver");

    app.click("#sign-in").await.expect("Sign in is clickable");
    let authorize = app
        .wait_for_authorize_url(None)
        .await
        .expect("clicking Sign in opens the authorization URL in the browser");
    assert_eq!(
        query_param(&authorize, "redirect_uri").as_deref(),
        Some(SCHEME_REDIRECT),
        "the installed app asks for the private-use scheme redirect"
    );
    let callback = headless_login(&authorize, SCHEME_REDIRECT)
        .await
        .expect("the IdP logs alice in and redirects to the app's scheme");

    // The installed app must not register a per-user handler of its own (its quoted
    // `Exec="/usr/bin/confab" %u` defeats bookworm's xdg-open): the package's entry stays the
    // scheme's handler after the app has started.
    let handler = app
        .command("xdg-mime")
        .args(["query", "default", SCHEME_MIME])
        .output()
        .await
        .expect("xdg-mime runs");
    let handler = String::from_utf8_lossy(&handler.stdout).trim().to_owned();
    assert_eq!(
        handler, DESKTOP_ENTRY,
        "after the installed app has started, the package's desktop entry still handles the scheme"
    );
    let opened = tokio::time::timeout(
        UI_TIMEOUT,
        app.command("xdg-open").arg(callback.as_str()).output(),
    )
    .await
    .expect("xdg-open returns once the second process has handed the link over")
    .expect("xdg-open runs (Debian package xdg-utils)");
    assert!(
        opened.status.success(),
        "xdg-open delivers the link through the package's desktop entry: {} {}",
        opened.status,
        String::from_utf8_lossy(&opened.stderr)
    );

    let header = app
        .wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("the link opened through the desktop reaches the running app and signs in");
    assert_eq!(
        header, "Signed in as Alice Example",
        "the header names the user from the ID token"
    );
    let stats = idp.stats().await.expect("IdP stats");
    assert_eq!(
        stats.authorization_code_requests, 1,
        "the code is exchanged exactly once"
    );
    app.close().await.expect("the session ends");
}
