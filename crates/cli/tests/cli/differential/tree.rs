//! What a client observed, as a tree of named fields: any `kafka-protocol`
//! message is read back from its `Debug` text (every message type derives
//! it), so one parser covers every API without a per-message visitor.
//! Flattening turns the tree into `path = value` lines, the unit of the
//! comparison.

use std::collections::BTreeMap;
use std::fmt::Debug;

/// A value seen in an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A number, string (quoted, escaped as `Debug` writes it), byte string,
    /// `None`, `true`, a UUID, an enum variant.
    Leaf(String),
    /// A struct's fields (or a map's entries), in order.
    Fields(Vec<(String, Node)>),
    /// A list's elements, in order.
    List(Vec<Node>),
}

impl Node {
    /// The tree of anything `Debug` prints the way `#[derive(Debug)]` does.
    pub fn of(value: &impl Debug) -> Node {
        let text = format!("{value:?}");
        let tokens = tokenize(&text);
        let mut parser = Parser { tokens, at: 0 };
        let node = parser.value();
        assert!(
            parser.at == parser.tokens.len(),
            "unparsed Debug text after token {}: {text}",
            parser.at
        );
        node
    }

    /// A leaf holding `value` as `Debug` prints it.
    pub fn leaf(value: impl Debug) -> Node {
        Node::Leaf(format!("{value:?}"))
    }

    /// The leaf of field `name`, if this is a struct that has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        match self {
            Node::Fields(fields) => fields.iter().find_map(|(n, v)| match v {
                Node::Leaf(l) if n == name => Some(l.as_str()),
                _ => None,
            }),
            _ => None,
        }
    }

    /// `path = value` for every leaf, keyed so that lists of named things
    /// are compared by name rather than position (see
    /// [`super::normalise::element_label`]).
    pub fn flatten(&self, prefix: &str, field: &str, out: &mut BTreeMap<String, String>) {
        match self {
            Node::Leaf(v) => {
                out.insert(prefix.to_string(), v.clone());
            }
            Node::Fields(fields) => {
                if fields.is_empty() {
                    out.insert(prefix.to_string(), "{}".into());
                }
                for (name, node) in fields {
                    let path = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    node.flatten(&path, name, out);
                }
            }
            Node::List(items) => {
                out.insert(format!("{prefix}.len"), items.len().to_string());
                let mut labels: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| super::normalise::element_label(field, i, item))
                    .collect();
                let mut seen = std::collections::BTreeSet::new();
                if !labels.iter().all(|l| seen.insert(l.clone())) {
                    labels = (0..items.len()).map(|i| i.to_string()).collect();
                }
                for (item, label) in items.iter().zip(labels) {
                    item.flatten(&format!("{prefix}[{label}]"), field, out);
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Punct(char),
    Atom(String),
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '{' | '}' | '[' | ']' | '(' | ')' | ',' | ':' => {
                chars.next();
                out.push(Token::Punct(c));
            }
            _ => {
                let mut atom = String::new();
                let mut quoted = false;
                while let Some(&c) = chars.peek() {
                    if quoted {
                        atom.push(c);
                        chars.next();
                        if c == '\\' {
                            if let Some(escaped) = chars.next() {
                                atom.push(escaped);
                            }
                        } else if c == '"' {
                            quoted = false;
                        }
                        continue;
                    }
                    if c.is_whitespace() || "{}[](),:".contains(c) {
                        break;
                    }
                    if c == '"' {
                        quoted = true;
                    }
                    atom.push(c);
                    chars.next();
                }
                out.push(Token::Atom(atom));
            }
        }
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) {
        assert!(self.eat(c), "expected {c:?} at token {}", self.at);
    }

    fn value(&mut self) -> Node {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Punct('[')) => {
                self.at += 1;
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value());
                    if !self.eat(',') {
                        self.expect(']');
                        break;
                    }
                }
                Node::List(items)
            }
            Some(Token::Punct('{')) => self.fields(),
            Some(Token::Punct('(')) => {
                // A tuple.
                self.at += 1;
                let mut items = Vec::new();
                while !self.eat(')') {
                    items.push(self.value());
                    if !self.eat(',') {
                        self.expect(')');
                        break;
                    }
                }
                Node::List(items)
            }
            Some(Token::Atom(atom)) => {
                self.at += 1;
                match self.peek() {
                    Some(Token::Punct('{')) => self.fields(),
                    Some(Token::Punct('(')) => {
                        self.at += 1;
                        let mut items = Vec::new();
                        while !self.eat(')') {
                            items.push(self.value());
                            if !self.eat(',') {
                                self.expect(')');
                                break;
                            }
                        }
                        // Newtypes (`BrokerId(0)`, `TopicName("t")`, `Some(x)`)
                        // are their content.
                        if items.len() == 1 {
                            items.remove(0)
                        } else {
                            Node::List(items)
                        }
                    }
                    _ => Node::Leaf(atom),
                }
            }
            other => panic!("unexpected {other:?} at token {}", self.at),
        }
    }

    /// `{ name: value, ... }` (a struct's fields or a map's entries).
    fn fields(&mut self) -> Node {
        self.expect('{');
        let mut fields = Vec::new();
        while !self.eat('}') {
            let name = match self.value() {
                Node::Leaf(name) => name.trim_matches('"').to_string(),
                other => format!("{other:?}"),
            };
            self.expect(':');
            fields.push((name, self.value()));
            if !self.eat(',') {
                self.expect('}');
                break;
            }
        }
        Node::Fields(fields)
    }
}
