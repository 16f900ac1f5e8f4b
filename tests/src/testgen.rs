//! Writes a CA, certificates and every kind of store with the real tools, `openssl`
//! and `keytool` (Java 17): into a temporary directory removed on drop (the broker
//! tests), or into a kept directory with long-lived certificates (the committed
//! fixtures of ferrokafka-tls's unit tests, `scripts/tls-fixtures.sh`).

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The store password of every generated store.
pub const STORE_PASSWORD: &str = "store-secret-1";
/// The key password where a store allows a separate one (JKS, encrypted PEM).
pub const KEY_PASSWORD: &str = "key-secret-2";

/// RSA 2048 or EC P-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ec,
}

impl KeyType {
    /// `rsa` or `ec`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ec => "ec",
        }
    }
}

/// A leaf made with openssl: PKCS#8 key, certificate, chain (leaf + CA).
#[derive(Clone, Debug)]
pub struct Leaf {
    pub key: PathBuf,
    pub cert: PathBuf,
    pub chain: PathBuf,
}

/// A CA and its directory.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    serial: AtomicU32,
    /// Validity of the leaves, in days.
    days: String,
    /// Whether the directory is removed on drop.
    temporary: bool,
}

impl Drop for Pki {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs a tool, failing with its output.
pub fn run(program: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {program} (is it installed?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn keytool(args: &[&str], dir: &Path) -> Result<(), String> {
    let bin = if Path::new("/usr/bin/keytool").exists() { "/usr/bin/keytool" } else { "keytool" };
    let mut all = vec!["-J-Duser.language=en"];
    all.extend_from_slice(args);
    run(bin, &all, dir)
}

impl Pki {
    /// A new CA (RSA 2048, 10 years) named `name` in a fresh temporary directory.
    pub fn new(name: &str) -> Result<Pki, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrokafka-pki-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Pki::create(dir, name, 365, 3650, true)
    }

    /// A CA and leaves valid for `days` in `dir` (emptied first), kept on drop: for
    /// fixtures committed to the repository.
    pub fn kept(dir: &Path, name: &str, days: u32) -> Result<Pki, String> {
        Pki::create(dir.to_owned(), name, days, days, false)
    }

    fn create(dir: PathBuf, name: &str, days: u32, ca_days: u32, temporary: bool) -> Result<Pki, String> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let pki = Pki {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            dir,
            serial: AtomicU32::new(1),
            days: days.to_string(),
            temporary,
        };
        let ca_days = ca_days.to_string();
        let subj = format!("/CN=ferrokafka test CA {name}");
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                &ca_days,
                "-subj",
                &subj,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            &pki.dir,
        )?;
        Ok(pki)
    }

    /// Removes the directories of `Pki::new(name)` left by test processes that
    /// have exited (a `Pki` kept in a static is never dropped).
    pub fn remove_stale(name: &str) {
        let prefix = format!("ferrokafka-pki-{name}-");
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            let Some(pid) = file.strip_prefix(&prefix).and_then(|rest| rest.split('-').next()) else { continue };
            if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn ext_file(&self, name: &str, sans: &str) -> Result<String, String> {
        let file = format!("{name}.ext");
        let text = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={sans}\n"
        );
        std::fs::write(self.path(&file), text).map_err(|e| e.to_string())?;
        Ok(file)
    }

    /// Signs a CSR with the CA (openssl), valid one year.
    fn sign(&self, csr: &str, out: &str, name: &str, sans: &str) -> Result<(), String> {
        let ext = self.ext_file(name, sans)?;
        let serial = format!("{}", 1000 + self.serial.fetch_add(1, Ordering::Relaxed));
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial,
                "-out",
                out,
                "-days",
                &self.days,
                "-sha256",
                "-extfile",
                &ext,
            ],
            &self.dir,
        )
    }

    fn new_key(&self, file: &str, key: KeyType) -> Result<(), String> {
        let opts: &[&str] = match key {
            KeyType::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            KeyType::Ec => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        };
        let mut args = vec!["genpkey"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["-out", file]);
        run("openssl", &args, &self.dir)
    }

    /// A leaf key and certificate for `sans` (e.g. `IP:127.0.0.1,DNS:localhost`).
    pub fn leaf(&self, name: &str, key: KeyType, sans: &str) -> Result<Leaf, String> {
        let (k, csr, crt, chain) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}-chain.pem"));
        self.new_key(&k, key)?;
        run("openssl", &["req", "-new", "-key", &k, "-subj", &format!("/CN={name}"), "-out", &csr], &self.dir)?;
        self.sign(&csr, &crt, name, sans)?;
        self.concat(&chain, &[&crt, "ca.pem"])?;
        Ok(Leaf { key: self.path(&k), cert: self.path(&crt), chain: self.path(&chain) })
    }

    /// A leaf whose certificate expired years ago (signed by keytool -gencert with
    /// a start date in the past).
    pub fn expired_leaf(&self, name: &str, key: KeyType, sans: &str) -> Result<Leaf, String> {
        let (k, csr, crt, chain) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}-chain.pem"));
        self.new_key(&k, key)?;
        run("openssl", &["req", "-new", "-key", &k, "-subj", &format!("/CN={name}"), "-out", &csr], &self.dir)?;
        if !self.path("ca.p12").exists() {
            run(
                "openssl",
                &[
                    "pkcs12",
                    "-export",
                    "-inkey",
                    "ca.key",
                    "-in",
                    "ca.pem",
                    "-name",
                    "ca",
                    "-out",
                    "ca.p12",
                    "-passout",
                    &format!("pass:{STORE_PASSWORD}"),
                ],
                &self.dir,
            )?;
        }
        keytool(
            &[
                "-gencert",
                "-keystore",
                "ca.p12",
                "-storetype",
                "PKCS12",
                "-storepass",
                STORE_PASSWORD,
                "-alias",
                "ca",
                "-infile",
                &csr,
                "-outfile",
                &crt,
                "-rfc",
                "-startdate",
                "2020/01/01",
                "-validity",
                "30",
                "-ext",
                &format!("SAN={}", sans.replace("IP:", "ip:").replace("DNS:", "dns:")),
                "-ext",
                "EKU=serverAuth,clientAuth",
            ],
            &self.dir,
        )?;
        self.concat(&chain, &[&crt, "ca.pem"])?;
        Ok(Leaf { key: self.path(&k), cert: self.path(&crt), chain: self.path(&chain) })
    }

    fn concat(&self, out: &str, files: &[&str]) -> Result<(), String> {
        let mut text = String::new();
        for f in files {
            text.push_str(&std::fs::read_to_string(self.path(f)).map_err(|e| format!("{f}: {e}"))?);
        }
        std::fs::write(self.path(out), text).map_err(|e| e.to_string())
    }

    /// A PEM file with the leaf's key followed by its chain (Java's PEM keystore).
    pub fn pem_keystore(&self, leaf: &Leaf, out: &str) -> Result<PathBuf, String> {
        let key = std::fs::read_to_string(&leaf.key).map_err(|e| e.to_string())?;
        let chain = std::fs::read_to_string(&leaf.chain).map_err(|e| e.to_string())?;
        std::fs::write(self.path(out), format!("{key}{chain}")).map_err(|e| e.to_string())?;
        Ok(self.path(out))
    }

    /// The leaf's key as encrypted PKCS#8: `v2` = PBES2 with AES-256-CBC, otherwise
    /// the legacy PKCS#12 PBE-SHA1-3DES.
    pub fn encrypted_key(&self, leaf: &Leaf, pbes2: bool, password: &str, out: &str) -> Result<PathBuf, String> {
        let pass = format!("pass:{password}");
        let key = leaf.key.to_string_lossy().to_string();
        let scheme: &[&str] = if pbes2 { &["-v2", "aes-256-cbc"] } else { &["-v1", "PBE-SHA1-3DES"] };
        let mut args = vec!["pkcs8", "-topk8", "-in", &key, "-out", out, "-passout", &pass];
        args.extend_from_slice(scheme);
        run("openssl", &args, &self.dir)?;
        Ok(self.path(out))
    }

    /// The leaf's key in OpenSSL's traditional form (PKCS#1 for RSA, SEC1 for EC).
    pub fn traditional_key(&self, leaf: &Leaf, out: &str) -> Result<PathBuf, String> {
        let key = leaf.key.to_string_lossy().to_string();
        run("openssl", &["pkey", "-in", &key, "-traditional", "-out", out], &self.dir)?;
        Ok(self.path(out))
    }

    /// A PKCS#12 keystore written by openssl (key, leaf, CA). `legacy` uses
    /// PBE-SHA1-3DES and a SHA-1 MAC instead of OpenSSL 3's AES/SHA-256 defaults.
    pub fn openssl_pkcs12(&self, leaf: &Leaf, password: &str, legacy: bool, out: &str) -> Result<PathBuf, String> {
        let (key, cert) = (leaf.key.to_string_lossy().to_string(), leaf.cert.to_string_lossy().to_string());
        let pass = format!("pass:{password}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            &key,
            "-in",
            &cert,
            "-certfile",
            "ca.pem",
            "-name",
            "client",
            "-out",
            out,
        ];
        args.extend_from_slice(&["-passout", &pass]);
        if legacy {
            args.extend_from_slice(&["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"]);
        }
        run("openssl", &args, &self.dir)?;
        Ok(self.path(out))
    }

    /// A keystore written by keytool: a key pair generated by Java (its EC keys
    /// have no public key in their PKCS#8), certified by the CA, CA imported too.
    /// `store_type` is `JKS` or `PKCS12`; PKCS12 forces the key password to the
    /// store password.
    pub fn keytool_keystore(
        &self,
        name: &str,
        key: KeyType,
        store_type: &str,
        key_password: &str,
        sans: &str,
    ) -> Result<PathBuf, String> {
        let file = format!("{name}.{}", if store_type == "JKS" { "jks" } else { "p12" });
        let (csr, crt) = (format!("{name}-kt.csr"), format!("{name}-kt.pem"));
        let _ = std::fs::remove_file(self.path(&file));
        let alg: &[&str] = match key {
            KeyType::Rsa => &["-keyalg", "RSA", "-keysize", "2048"],
            KeyType::Ec => &["-keyalg", "EC", "-groupname", "secp256r1"],
        };
        let key_password = if store_type == "JKS" { key_password } else { STORE_PASSWORD };
        let common = ["-keystore", &file, "-storetype", store_type, "-storepass", STORE_PASSWORD];
        let dname = format!("CN={name}");
        let mut gen = vec!["-genkeypair", "-alias", name, "-dname", &dname, "-validity", &self.days];
        gen.extend_from_slice(alg);
        gen.extend_from_slice(&["-keypass", key_password]);
        gen.extend_from_slice(&common);
        keytool(&gen, &self.dir)?;
        let mut req = vec!["-certreq", "-alias", name, "-file", &csr, "-keypass", key_password];
        req.extend_from_slice(&common);
        keytool(&req, &self.dir)?;
        self.sign(&csr, &crt, &format!("{name}-kt"), sans)?;
        let mut ca = vec!["-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem"];
        ca.extend_from_slice(&common);
        keytool(&ca, &self.dir)?;
        let mut reply = vec!["-importcert", "-noprompt", "-alias", name, "-file", &crt, "-keypass", key_password];
        reply.extend_from_slice(&common);
        keytool(&reply, &self.dir)?;
        Ok(self.path(&file))
    }

    /// A trust-only store with the CA written by keytool (`JKS` or `PKCS12`).
    pub fn truststore(&self, store_type: &str, out: &str) -> Result<PathBuf, String> {
        let _ = std::fs::remove_file(self.path(out));
        keytool(
            &[
                "-importcert",
                "-noprompt",
                "-alias",
                "ca",
                "-file",
                "ca.pem",
                "-keystore",
                out,
                "-storetype",
                store_type,
                "-storepass",
                STORE_PASSWORD,
            ],
            &self.dir,
        )?;
        Ok(self.path(out))
    }
}
