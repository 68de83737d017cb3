//! Server-sent events, as OpenAI-compatible servers stream completions: `data:`
//! lines, an empty line ending each event, `:` comments. Bytes arrive in pieces
//! that split lines (and characters) anywhere; only whole lines are read.

/// Reads events out of the bytes given to it.
#[derive(Default)]
pub struct Parser {
    /// Bytes of a line not ended yet.
    line: Vec<u8>,
    /// The data of the event being read.
    data: String,
    has_data: bool,
}

/// A line that is not UTF-8.
#[derive(Debug, PartialEq, Eq)]
pub struct NotText;

impl Parser {
    /// Read `bytes`, appending the data of each event they complete to `events`.
    pub fn feed(&mut self, bytes: &[u8], events: &mut Vec<String>) -> Result<(), NotText> {
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line(&line, events)?;
            } else {
                self.line.push(byte);
            }
        }
        Ok(())
    }

    /// The stream ended: the event still being read, if any, is complete.
    pub fn finish(&mut self, events: &mut Vec<String>) -> Result<(), NotText> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line(&line, events)?;
        }
        self.dispatch(events);
        Ok(())
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<String>) -> Result<(), NotText> {
        let line = std::str::from_utf8(line).map_err(|_| NotText)?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            self.dispatch(events);
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        // Comments (`:`) and other fields (`event:`, `id:`, `retry:`) carry
        // nothing a completion needs.
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Vec<String>) {
        if self.has_data {
            events.push(std::mem::take(&mut self.data));
            self.has_data = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pieces: &[&[u8]]) -> Vec<String> {
        let mut parser = Parser::default();
        let mut events = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut events).expect("text");
        }
        parser.finish(&mut events).expect("text");
        events
    }

    #[test]
    fn events_split_anywhere_are_read_whole() {
        let stream = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":\"\xc3\xa9\"}\r\n\r\ndata: [DONE]\n\n";
        let whole = read(&[stream]);
        assert_eq!(whole, ["{\"a\":1}", "{\"b\":\"é\"}", "[DONE]"]);
        // Split at every byte, the multi-byte character included.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read(&bytes), whole);
    }

    #[test]
    fn data_lines_of_one_event_join_and_the_last_event_needs_no_blank_line() {
        assert_eq!(read(&[b"data: a\ndata: b\n\ndata: c"]), ["a\nb", "c"]);
        assert_eq!(read(&[b"event: x\nid: 1\ndata:no-space\n\n"]), ["no-space"]);
    }

    #[test]
    fn bytes_that_are_not_text_are_refused() {
        let mut parser = Parser::default();
        let mut events = Vec::new();
        assert_eq!(parser.feed(b"data: \xff\n", &mut events), Err(NotText));
    }
}
