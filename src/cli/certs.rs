//! `certs:*`: an app's TLS certificate. With one, nginx serves the app
//! over HTTPS (HTTP/2 on) and redirects HTTP there.

use std::io::Read;

use anyhow::{Context, bail};

use super::fields::Report;
use super::{Args, Command, Ctx};
use crate::deploy::{proxy, tls};
use crate::state::apps;
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "certs:add",
        usage: "APP [CERT KEY]",
        about: "Install a certificate and key (PEM files, or a tar with server.crt and server.key on stdin)",
        switches: &[],
        options: &[],
        run: add,
    },
    Command {
        name: "certs:update",
        usage: "APP [CERT KEY]",
        about: "Replace the app's certificate and key (as certs:add: files, or a tar on stdin)",
        switches: &[],
        options: &[],
        run: add,
    },
    Command {
        name: "certs:show",
        usage: "APP crt|key",
        about: "Print the app's certificate (crt) or private key (key), to export them",
        switches: &[],
        options: &[],
        run: show,
    },
    Command {
        name: "certs:generate",
        usage: "APP [DOMAIN...] [--days N]",
        about: "Install a self-signed certificate for the app's names (default 365 days)",
        switches: &[],
        options: &["--days"],
        run: generate,
    },
    Command {
        name: "certs:remove",
        usage: "APP",
        about: "Remove the certificate; the app is served over HTTP only",
        switches: &[],
        options: &[],
        run: remove,
    },
    Command {
        name: "certs:report",
        usage: "APP [--format json] [--FIELD]",
        about: "Issuer, subject, names and expiry",
        switches: &[],
        options: &["--format"],
        run: report,
    },
];

/// server.crt and server.key from a tar stream, as Dokku's `certs:add < certs.tar`.
fn from_tar(input: impl Read) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let (mut cert, mut key) = (None, None);
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().context("stdin is not a tar archive")? {
        let mut entry = entry.context("stdin is not a tar archive")?;
        let name = entry.path()?.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut bytes = Vec::new();
        if name.ends_with(".crt") || name.ends_with(".key") {
            entry.by_ref().take(1 << 20).read_to_end(&mut bytes)?;
        }
        if name.ends_with(".crt") {
            cert = Some(bytes);
        } else if name.ends_with(".key") {
            key = Some(bytes);
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => Ok((c, k)),
        _ => bail!("the tar on stdin must hold a .crt and a .key file"),
    }
}

/// A certificate set by hand is not renewed from Let's Encrypt.
fn not_letsencrypt(locked: &apps::LockedApp) -> anyhow::Result<()> {
    let mut meta = apps::meta(&locked.app)?;
    if meta.letsencrypt {
        meta.letsencrypt = false;
        apps::write_meta(locked, &meta)?;
        println!("-----> {} no longer renews from Let's Encrypt", locked.app.name);
    }
    Ok(())
}

/// A PEM file is a few KiB; anything past this is not one.
const PEM_CAP: u64 = 1 << 20;

pub(super) fn add(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (cert, key) = match args.positional().len() {
        3 => {
            // Admins name these (often certbot's symlinks): followed, but capped.
            let read = |i: usize| -> anyhow::Result<Vec<u8>> {
                use std::io::Read;
                let path = args.get(i).expect("checked");
                let mut bytes = Vec::new();
                std::fs::File::open(path)
                    .and_then(|f| f.take(PEM_CAP + 1).read_to_end(&mut bytes))
                    .with_context(|| format!("cannot read {}", path.to_string_lossy()))?;
                if bytes.len() as u64 > PEM_CAP {
                    anyhow::bail!("{} is over {PEM_CAP} bytes: not a PEM file", path.to_string_lossy());
                }
                Ok(bytes)
            };
            (read(1)?, read(2)?)
        }
        1 => from_tar(std::io::stdin().lock())?,
        _ => return Err(args.usage_error("give CERT and KEY files, or a tar on stdin").into()),
    };
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    tls::install(&locked.app, &cert, &key)?;
    not_letsencrypt(&locked)?;
    proxy::refresh(&ctx.root, &locked.app)?;
    println!("-----> {} serves HTTPS with the new certificate", locked.app.name);
    Ok(())
}

fn generate(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let days = match args.option("--days") {
        None => 365,
        Some(d) => d.to_str().and_then(|d| d.parse::<u32>().ok()).filter(|d| (1..=3650).contains(d)).context("--days takes 1 to 3650")?,
    };
    let mut names: Vec<String> = Vec::new();
    for raw in &args.positional()[1..] {
        names.push(crate::model::domain::Domain::parse(&raw.to_string_lossy())?.to_string());
    }
    if names.is_empty() {
        names = proxy::server_names(&Settings::load(&ctx.root)?, &locked.app, &apps::meta(&locked.app)?);
    }
    tls::generate(&locked.app, &names, days)?;
    not_letsencrypt(&locked)?;
    proxy::refresh(&ctx.root, &locked.app)?;
    println!("-----> {} serves HTTPS with a self-signed certificate for {}", locked.app.name, names.join(" "));
    Ok(())
}

fn remove(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    tls::remove(&locked.app)?;
    not_letsencrypt(&locked)?;
    proxy::refresh(&ctx.root, &locked.app)?;
    println!("-----> {} is served over HTTP only", locked.app.name);
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let enabled = tls::cert_file(&app).exists();
    let fields: std::collections::BTreeMap<String, String> =
        if enabled { tls::describe(&app)?.into_iter().collect() } else { Default::default() };
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let hostnames: Vec<String> = get("names").split(", ").filter_map(|n| n.strip_prefix("DNS:")).map(str::to_owned).collect();
    let verified = match enabled {
        false => "",
        true if get("issuer") == get("subject") => "self signed",
        true => "signed by a certificate authority",
    };
    Report::new("ssl", &app.name)
        .field("ssl-dir", tls::cert_file(&app).parent().map(|d| d.display().to_string()).unwrap_or_default())
        .field("ssl-enabled", enabled)
        .field("ssl-hostnames", hostnames.join(" "))
        .field("ssl-expires-at", get("notAfter"))
        .field("ssl-starts-at", get("notBefore"))
        .field("ssl-issuer", get("issuer"))
        .field("ssl-subject", get("subject"))
        .field("ssl-verified", verified)
        .print(&args)?;
    Ok(())
}

fn show(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let path = match args.text(1).as_deref() {
        Some("crt") => tls::cert_file(&app),
        Some("key") => tls::key_file(&app),
        _ => return Err(args.usage_error("say crt or key").into()),
    };
    if !tls::has_cert(&app) {
        bail!("{} has no certificate", app.name);
    }
    // berth wrote these files; a certificate chain is a few kilobytes.
    let pem = crate::state::read_capped(&path, 1 << 20).with_context(|| format!("cannot read {}", path.display()))?;
    std::io::Write::write_all(&mut std::io::stdout(), &pem)?;
    Ok(())
}
