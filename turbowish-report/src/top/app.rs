//! The viewer's state beside the program's: sort, filter, pause,
//! selection and the status line, and what each key does.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::widgets::TableState;
use turbowish_snapshot::live::{Hello, ServerFrame};

use super::model::{visible_rows, Model, SortKey, TaskRow};

/// What a key asks of the event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave.
    Quit,
    /// Ask the program for a snapshot file.
    Snapshot,
}

/// The viewer: the program as last heard ([`Model`]), what is shown of it,
/// and how.
#[derive(Debug)]
pub struct App {
    /// The program as the stream tells it, updated even while paused.
    pub model: Model,
    /// What the screen shows while paused: the model when `p` was pressed.
    frozen: Option<Model>,
    /// The column rows are sorted by.
    pub sort: SortKey,
    /// Biggest (or Z) first.
    pub descending: bool,
    /// Rows shown are those whose name contains this (ignoring case).
    pub filter: String,
    /// Whether keys are being typed into the filter (after `/`).
    pub editing: bool,
    /// The last message for the status line.
    pub status: String,
    /// The selected row and the table's scroll.
    pub table: TableState,
}

impl App {
    /// The viewer of the program that said `hello`, sorted by live bytes.
    pub fn new(hello: Hello) -> App {
        App {
            model: Model::new(hello),
            frozen: None,
            sort: SortKey::Live,
            descending: true,
            filter: String::new(),
            editing: false,
            status: String::new(),
            table: TableState::default().with_selected(Some(0)),
        }
    }

    /// The model the screen shows: frozen while paused.
    pub fn shown(&self) -> &Model {
        self.frozen.as_ref().unwrap_or(&self.model)
    }

    /// Whether the screen is paused.
    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// The rows shown, in order.
    pub fn rows(&self) -> Vec<&TaskRow> {
        visible_rows(self.shown(), self.sort, self.descending, &self.filter)
    }

    /// Takes in a frame from the program.
    pub fn on_frame(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Update(update) => self.model.apply(update),
            ServerFrame::SnapshotWritten { path } => {
                self.status = format!("snapshot written: {path}");
            }
            ServerFrame::SnapshotFailed { message } => {
                self.status = format!("snapshot failed: {message}");
            }
            // Only first; a later one is the program's business.
            ServerFrame::Hello(_) | ServerFrame::Refused { .. } => {}
        }
    }

    /// What `key` does.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() => self.filter.push(c),
                _ => {}
            }
            self.table.select(Some(0));
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('s') => {
                self.status = "snapshot requested…".to_owned();
                return Action::Snapshot;
            }
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(self.model.clone()),
                };
            }
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Right | KeyCode::Char('>') => self.set_sort(self.sort.step(true)),
            KeyCode::Left | KeyCode::Char('<') => self.set_sort(self.sort.step(false)),
            KeyCode::Char('r') => self.descending = !self.descending,
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(20),
            KeyCode::PageUp => self.move_selection(-20),
            KeyCode::Home => self.table.select(Some(0)),
            KeyCode::End => self.move_selection(isize::MAX / 2),
            _ => {}
        }
        Action::None
    }

    fn set_sort(&mut self, key: SortKey) {
        self.sort = key;
        self.descending = key.default_descending();
    }

    fn move_selection(&mut self, by: isize) {
        let last = self.rows().len().saturating_sub(1);
        let now = self.table.selected().unwrap_or(0);
        let next = now.saturating_add_signed(by).min(last);
        self.table.select(Some(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::model::tests::{bank, hello};
    use turbowish_snapshot::live::Update;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn app() -> App {
        let mut app = App::new(hello());
        app.model = bank();
        app
    }

    fn first(app: &App) -> String {
        app.rows()[0].name.clone()
    }

    #[test]
    fn keys_sort_reverse_filter_and_quit() {
        let mut app = app();
        assert_eq!(first(&app), "session-cache");
        assert_eq!(app.on_key(key(KeyCode::Left)), Action::None);
        assert_eq!(app.sort, SortKey::Name);
        assert!(!app.descending);
        assert_eq!(first(&app), "main (outside tasks)");
        app.on_key(key(KeyCode::Char('r')));
        assert_eq!(first(&app), "transfer");
        app.on_key(key(KeyCode::Right));
        app.on_key(key(KeyCode::Right));
        assert_eq!((app.sort, app.descending), (SortKey::Blocks, true));

        for c in "/ReAd".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        assert!(app.editing);
        // While typing, `q` and `s` are letters of the filter.
        app.on_key(key(KeyCode::Char('q')));
        assert_eq!(app.filter, "ReAdq");
        assert!(app.rows().is_empty());
        app.on_key(key(KeyCode::Backspace));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::None);
        assert!(!app.editing);
        let names: Vec<_> = app.rows().iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, ["reader-1", "reader-2"]);
        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.filter, "");
        assert_eq!(app.rows().len(), 5);

        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(
            app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Quit
        );
    }

    #[test]
    fn snapshot_key_asks_and_the_answer_shows() {
        let mut app = app();
        assert_eq!(app.on_key(key(KeyCode::Char('s'))), Action::Snapshot);
        assert_eq!(app.status, "snapshot requested…");
        app.on_frame(ServerFrame::SnapshotWritten {
            path: "/var/tmp/tw/turbowish-4242-1.json".to_owned(),
        });
        assert_eq!(
            app.status,
            "snapshot written: /var/tmp/tw/turbowish-4242-1.json"
        );
        app.on_frame(ServerFrame::SnapshotFailed {
            message: "disk full".to_owned(),
        });
        assert_eq!(app.status, "snapshot failed: disk full");
    }

    #[test]
    fn pause_freezes_the_screen_not_the_model() {
        let mut app = app();
        app.on_key(key(KeyCode::Char('p')));
        assert!(app.paused());
        app.on_frame(ServerFrame::Update(Update {
            seq: 3,
            ..Update::default()
        }));
        assert_eq!(app.model.seq, 3);
        assert_eq!(app.shown().seq, 2);
        app.on_key(key(KeyCode::Char(' ')));
        assert!(!app.paused());
        assert_eq!(app.shown().seq, 3);
    }

    #[test]
    fn the_selection_stays_on_the_rows() {
        let mut app = app();
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.table.selected(), Some(0));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.table.selected(), Some(4));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.table.selected(), Some(4));
        app.on_key(key(KeyCode::PageUp));
        assert_eq!(app.table.selected(), Some(0));
    }
}
