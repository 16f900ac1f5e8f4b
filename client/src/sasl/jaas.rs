//! `sasl.jaas.config`: the Java client's one-line JAAS login module configuration,
//! e.g. `org.apache.kafka.common.security.scram.ScramLoginModule required
//! username="alice" password="secret";`.

use std::collections::BTreeMap;

/// One parsed login module: its class, control flag and options.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The login module class (full name as written).
    pub module: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// The options, in the order of their names.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JaasConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Option values hold passwords and secrets: names only.
        f.debug_struct("JaasConfig")
            .field("module", &self.module)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JaasConfig {
    /// The module's simple class name (`ScramLoginModule`).
    pub fn simple_module(&self) -> &str {
        self.module.rsplit('.').next().unwrap_or(&self.module)
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Eq,
    Semi,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Eq);
            }
            ';' => {
                chars.next();
                out.push(Token::Semi);
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("a quoted value is not closed".into()),
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err("a quoted value ends in a backslash".into()),
                        },
                        Some(q) if q == quote => break,
                        Some(ch) => s.push(ch),
                    }
                }
                out.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '=' || ch == ';' || ch == '"' || ch == '\'' {
                        break;
                    }
                    s.push(ch);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

/// Parses `sasl.jaas.config`. Errors name what is wrong, never an option's value.
pub fn parse(text: &str) -> Result<JaasConfig, String> {
    let toks = tokens(text)?;
    let mut it = toks.into_iter().peekable();
    let module = match it.next() {
        Some(Token::Word(w)) => w,
        _ => return Err("expected a login module class first".into()),
    };
    let flag = match it.next() {
        Some(Token::Word(w)) if ["required", "requisite", "sufficient", "optional"].contains(&w.as_str()) => w,
        _ => return Err(format!("expected a control flag (required) after {module}")),
    };
    let mut options = BTreeMap::new();
    loop {
        match it.next() {
            Some(Token::Semi) => break,
            Some(Token::Word(key)) => {
                if it.next() != Some(Token::Eq) {
                    return Err(format!("expected = after option {key}"));
                }
                let value = match it.next() {
                    Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                    _ => return Err(format!("expected a value for option {key}")),
                };
                if options.insert(key.clone(), value).is_some() {
                    return Err(format!("option {key} is given twice"));
                }
            }
            None => return Err("the configuration must end with ;".into()),
            Some(_) => return Err("expected an option name or ;".into()),
        }
    }
    if it.next().is_some() {
        return Err("only one login module is supported".into());
    }
    Ok(JaasConfig { module, flag, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kafka_login_modules() {
        let c = parse(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p a\"ss;";"#,
        )
        .unwrap();
        assert_eq!(c.simple_module(), "ScramLoginModule");
        assert_eq!(c.flag, "required");
        assert_eq!(c.options["username"], "alice");
        assert_eq!(c.options["password"], "p a\"ss;");
        let p = parse("org.apache.kafka.common.security.plain.PlainLoginModule required username=bob password='x';")
            .unwrap();
        assert_eq!(
            (p.simple_module(), p.options["username"].as_str(), p.options["password"].as_str()),
            ("PlainLoginModule", "bob", "x")
        );
        let o = parse(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required\n  unsecuredLoginStringClaim_sub=\"thePrincipal\"\n  unsecuredLoginExtension_traceId=\"123\";",
        )
        .unwrap();
        assert_eq!(o.options["unsecuredLoginStringClaim_sub"], "thePrincipal");
        assert_eq!(o.options["unsecuredLoginExtension_traceId"], "123");
        assert!(parse("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;")
            .unwrap()
            .options
            .is_empty());
    }

    #[test]
    fn errors_say_what_is_wrong_without_values() {
        for (text, want) in [
            ("", "expected a login module class first"),
            ("Mod", "expected a control flag (required) after Mod"),
            ("Mod required username=\"a\"", "the configuration must end with ;"),
            ("Mod required username \"a\";", "expected = after option username"),
            ("Mod required password=\"hunter2;", "a quoted value is not closed"),
            ("Mod required a=1 a=2;", "option a is given twice"),
            ("Mod required; Other required;", "only one login module is supported"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e, want, "{text}");
            assert!(!e.contains("hunter2"));
        }
        let c = parse("Mod required password=\"hunter2\";").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
