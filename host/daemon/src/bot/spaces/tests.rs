use super::*;

fn child(space: &str, child: &str, via: &[&str]) -> ChildEvent {
    ChildEvent { space: space.into(), child: child.into(), via: via.iter().map(|s| (*s).to_owned()).collect() }
}

fn spaces() -> Spaces {
    let mut s = Spaces::default();
    s.top.insert("!top:x".into());
    s.parent.insert("!a:x".into(), "!top:x".into());
    s.parent.insert("!sub:x".into(), "!top:x".into());
    s.parent.insert("!b:x".into(), "!sub:x".into());
    s
}

#[test]
fn a_room_added_to_a_followed_space_is_protected_within_the_depth() {
    let s = spaces();
    let none = |_: &str| false;
    assert_eq!(
        s.change(&child("!top:x", "!new:x", &["x"]), 3, none),
        Change::Protect { child: "!new:x".into(), parent: "!top:x".into(), via: vec!["x".into()] }
    );
    // In the subspace (depth 1): its children are at depth 2.
    assert!(matches!(s.change(&child("!sub:x", "!new:x", &["x"]), 2, none), Change::Protect { .. }));
    assert_eq!(s.change(&child("!sub:x", "!new:x", &["x"]), 1, none), Change::Nothing);
    // Not a followed space; protected already; the space itself; taken out by moderators.
    assert_eq!(s.change(&child("!other:x", "!new:x", &["x"]), 3, none), Change::Nothing);
    assert_eq!(s.change(&child("!top:x", "!new:x", &["x"]), 3, |r| r == "!new:x"), Change::Nothing);
    assert_eq!(s.change(&child("!top:x", "!top:x", &["x"]), 3, none), Change::Nothing);
    let mut taken_out = s.clone();
    taken_out.excluded.insert("!new:x".into());
    assert_eq!(taken_out.change(&child("!top:x", "!new:x", &["x"]), 3, none), Change::Nothing);
}

#[test]
fn a_room_removed_from_its_space_stops_with_what_came_from_it() {
    let s = spaces();
    let none = |_: &str| false;
    assert_eq!(s.change(&child("!top:x", "!a:x", &[]), 3, none), Change::Stop { rooms: vec!["!a:x".into()] });
    assert_eq!(
        s.change(&child("!top:x", "!sub:x", &[]), 3, none),
        Change::Stop { rooms: vec!["!sub:x".into(), "!b:x".into()] }
    );
    // Removed from a space it did not come from (protected by hand, or another space's): kept.
    assert_eq!(s.change(&child("!sub:x", "!a:x", &[]), 3, none), Change::Nothing);
    assert_eq!(s.change(&child("!top:x", "!hand:x", &[]), 3, none), Change::Nothing);
}

#[test]
fn depth_and_origin_follow_the_chain_and_a_loop_ends() {
    let mut s = spaces();
    assert_eq!(s.depth("!top:x"), Some(0));
    assert_eq!(s.depth("!b:x"), Some(2));
    assert_eq!(s.top_of("!b:x"), Some("!top:x"));
    assert_eq!(s.depth("!stray:x"), None);
    s.parent.insert("!p:x".into(), "!q:x".into());
    s.parent.insert("!q:x".into(), "!p:x".into());
    assert_eq!(s.depth("!p:x"), None);
    assert_eq!(s.top_of("!q:x"), None);
}

#[test]
fn the_tree_is_walked_breadth_first_to_the_depth() {
    let chunks = vec![
        Chunk {
            room: "!top:x".into(),
            children: vec![
                child("!top:x", "!a:x", &["x"]),
                child("!top:x", "!sub:x", &["x"]),
                child("!top:x", "!gone:x", &[]),
            ],
        },
        Chunk {
            room: "!sub:x".into(),
            children: vec![child("!sub:x", "!b:x", &["y"]), child("!sub:x", "!top:x", &["x"])],
        },
        Chunk { room: "!a:x".into(), children: vec![] },
    ];
    let rooms = |depth| tree("!top:x", &chunks, depth).into_iter().map(|c| (c.child, c.space)).collect::<Vec<_>>();
    let pair = |c: &str, s: &str| (c.to_owned(), s.to_owned());
    assert_eq!(rooms(1), [pair("!a:x", "!top:x"), pair("!sub:x", "!top:x")]);
    assert_eq!(rooms(3), [pair("!a:x", "!top:x"), pair("!sub:x", "!top:x"), pair("!b:x", "!sub:x")]);
    assert_eq!(tree("!top:x", &chunks, 3)[2].via, ["y"]);
}

#[test]
fn stored_spaces_read_back_and_bad_parts_are_problems() {
    let s = spaces();
    let (read, problems) = Spaces::read(Some(&s.content()));
    assert!(problems.is_empty());
    assert_eq!(read, s);
    assert_eq!(Spaces::read(None), (Spaces::default(), Vec::new()));
    let bad = json!({"spaces": ["!top:x", "#alias:x"], "rooms": {"!a:x": 5, "!b:x": "!top:x"}, "excluded": "no"});
    let (read, problems) = Spaces::read(Some(&bad));
    assert_eq!(read.top, BTreeSet::from(["!top:x".to_owned()]));
    assert_eq!(read.parent.len(), 1);
    let paths: Vec<String> = problems.iter().map(|p| p.path.to_string()).collect();
    assert_eq!(paths, ["spaces[1]", "excluded", "rooms.!a:x"]);
    // Each offers a way out that changes only what it shows.
    for problem in &problems {
        assert!(problem.options[0].apply(Some(&bad)).is_ok(), "{problem}");
    }
}

#[test]
fn a_child_event_reads_its_via_and_an_empty_one_is_a_removal() {
    assert_eq!(ChildEvent::of("!s:x", "!c:x", r#"{"via": ["x", 5]}"#), Some(child("!s:x", "!c:x", &["x"])));
    assert_eq!(ChildEvent::of("!s:x", "!c:x", "{}"), Some(child("!s:x", "!c:x", &[])));
    assert_eq!(ChildEvent::of("!s:x", "!c:x", r#"{"via": "x"}"#), Some(child("!s:x", "!c:x", &[])));
    assert_eq!(ChildEvent::of("!s:x", "not a room", r#"{"via": ["x"]}"#), None);
}
