//! The mails' plain-text and HTML parts: built into the binary (`src/mail/templates/`), each
//! replaceable by a file of the same name in `mail.templates_dir`. A template's text part starts
//! with a `Subject:` line. Placeholders are `{{product}}`, `{{email}}`, `{{link}}`, `{{code}}`
//! and `{{minutes}}`; values are HTML-escaped in the HTML part.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

/// What a mail is for: each kind has its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    VerifyEmail,
    ResetPassword,
    SignIn,
    ChangeEmail,
    /// The notice to the old address that an email change was asked for.
    EmailChanged,
}

impl MailKind {
    pub const ALL: [MailKind; 5] = [
        MailKind::VerifyEmail,
        MailKind::ResetPassword,
        MailKind::SignIn,
        MailKind::ChangeEmail,
        MailKind::EmailChanged,
    ];

    /// The stored spelling, the template's name, and (for the kinds that carry one) the link's
    /// `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::ResetPassword => "reset_password",
            MailKind::SignIn => "sign_in",
            MailKind::ChangeEmail => "change_email",
            MailKind::EmailChanged => "email_changed",
        }
    }

    pub fn parse(text: &str) -> Option<MailKind> {
        MailKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    fn built_in(self) -> (&'static str, &'static str) {
        match self {
            MailKind::VerifyEmail => (
                include_str!("templates/verify_email.txt"),
                include_str!("templates/verify_email.html"),
            ),
            MailKind::ResetPassword => (
                include_str!("templates/reset_password.txt"),
                include_str!("templates/reset_password.html"),
            ),
            MailKind::SignIn => (
                include_str!("templates/sign_in.txt"),
                include_str!("templates/sign_in.html"),
            ),
            MailKind::ChangeEmail => (
                include_str!("templates/change_email.txt"),
                include_str!("templates/change_email.html"),
            ),
            MailKind::EmailChanged => (
                include_str!("templates/email_changed.txt"),
                include_str!("templates/email_changed.html"),
            ),
        }
    }
}

/// The values a template is filled with.
pub struct MailValues<'a> {
    pub product: &'a str,
    pub email: &'a str,
    pub link: Option<&'a str>,
    pub code: Option<&'a str>,
    pub minutes: i64,
}

/// A message ready to send.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

// The bodies carry links and codes: never printed whole.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

struct Template {
    subject: String,
    text: String,
    html: String,
}

pub struct Templates {
    by_kind: HashMap<MailKind, Template>,
}

impl Templates {
    /// The built-in templates, with those `dir` holds instead (when it is not empty).
    pub fn load(dir: &str) -> anyhow::Result<Templates> {
        let mut by_kind = HashMap::new();
        for kind in MailKind::ALL {
            let (text, html) = kind.built_in();
            let (mut text, mut html) = (text.to_string(), html.to_string());
            if !dir.is_empty() {
                let read = |ext: &str| -> anyhow::Result<Option<String>> {
                    let path = Path::new(dir).join(format!("{}.{ext}", kind.as_str()));
                    match std::fs::read_to_string(&path) {
                        Ok(found) => Ok(Some(found)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
                    }
                };
                text = read("txt")?.unwrap_or(text);
                html = read("html")?.unwrap_or(html);
            }
            let (subject, text) = split_subject(&text)
                .with_context(|| format!("template {}.txt: no Subject: line", kind.as_str()))?;
            by_kind.insert(
                kind,
                Template {
                    subject,
                    text,
                    html,
                },
            );
        }
        Ok(Templates { by_kind })
    }

    pub fn render(&self, kind: MailKind, to: &str, values: &MailValues<'_>) -> Mail {
        let template = &self.by_kind[&kind];
        Mail {
            to: to.to_string(),
            subject: fill(&template.subject, values, false),
            text: fill(&template.text, values, false),
            html: fill(&template.html, values, true),
        }
    }
}

fn split_subject(text: &str) -> Option<(String, String)> {
    let (first, rest) = text.split_once('\n')?;
    let subject = first.strip_prefix("Subject:")?.trim().to_string();
    Some((subject, rest.to_string()))
}

fn fill(template: &str, values: &MailValues<'_>, html: bool) -> String {
    let minutes = values.minutes.to_string();
    let pairs = [
        ("{{product}}", values.product),
        ("{{email}}", values.email),
        ("{{link}}", values.link.unwrap_or("")),
        ("{{code}}", values.code.unwrap_or("")),
        ("{{minutes}}", minutes.as_str()),
    ];
    let mut out = template.to_string();
    for (placeholder, value) in pairs {
        let value = if html {
            escape_html(value)
        } else {
            value.to_string()
        };
        out = out.replace(placeholder, &value);
    }
    out
}

fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(email: &'a str, link: &'a str) -> MailValues<'a> {
        MailValues {
            product: "Acme",
            email,
            link: Some(link),
            code: Some("123456"),
            minutes: 15,
        }
    }

    #[test]
    fn every_built_in_template_renders_its_values() {
        let templates = Templates::load("").unwrap();
        for kind in MailKind::ALL {
            let mail = templates.render(
                kind,
                "a@example.com",
                &values("a@example.com", "https://x/?t=1"),
            );
            assert!(mail.subject.contains("Acme"), "{kind:?}");
            assert!(
                !mail.text.contains("{{") && !mail.html.contains("{{"),
                "{kind:?}"
            );
            assert!(mail.text.contains("a@example.com"), "{kind:?}");
        }
        let sign_in = templates.render(
            MailKind::SignIn,
            "a@example.com",
            &values("a@example.com", "https://x/?t=1"),
        );
        assert!(sign_in.text.contains("123456") && sign_in.text.contains("https://x/?t=1"));
    }

    #[test]
    fn values_are_escaped_in_html_only() {
        let templates = Templates::load("").unwrap();
        let mail = templates.render(
            MailKind::VerifyEmail,
            "x",
            &values("<b>@x", "https://x/?a=1&b=2"),
        );
        assert!(mail.html.contains("&lt;b&gt;@x") && mail.html.contains("a=1&amp;b=2"));
        assert!(mail.text.contains("<b>@x") && mail.text.contains("a=1&b=2"));
    }

    #[test]
    fn a_directory_replaces_the_templates_it_holds() {
        let dir = std::env::temp_dir().join(format!("sessiond-templates-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("sign_in.txt"),
            "Subject: Code {{code}}\nYour code: {{code}}\n",
        )
        .unwrap();
        let templates = Templates::load(dir.to_str().unwrap()).unwrap();
        let mail = templates.render(MailKind::SignIn, "x", &values("x", "l"));
        assert_eq!(mail.subject, "Code 123456");
        assert_eq!(mail.text, "Your code: 123456\n");
        assert!(mail.html.contains("123456"), "the built-in HTML part stays");
        std::fs::write(dir.join("verify_email.txt"), "no subject line").unwrap();
        assert!(Templates::load(dir.to_str().unwrap()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
