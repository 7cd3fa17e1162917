from linkbert.links import MAX_REDIRECT_HOPS, LinkTable


def table() -> LinkTable:
    t = LinkTable()
    t.add_document(["id:1", "title:Paris"], 0)
    t.add_document(["id:2", "title:France"], 1)
    t.add_document(["id:3", "title:Paris"], 2)  # title collision: the first document keeps it
    t.add_skipped(["id:9", "title:Empty page"])
    t.add_redirect("title:Lutetia", "title:Paris")
    t.add_redirect("title:Old Lutetia", "title:Lutetia")
    t.add_redirect("title:A", "title:B")
    t.add_redirect("title:B", "title:A")
    return t


def test_resolution_outcomes():
    t = table()
    assert t.collisions == 1
    assert t.resolve(["id:2", "title:2"]) == (1, "resolved")
    assert t.resolve(["id:Paris", "title:Paris"]) == (0, "resolved")
    assert t.resolve(["title:Old Lutetia"]) == (0, "redirect")
    assert t.resolve(["title:Empty page"]) == (None, "to_skipped_document")
    assert t.resolve(["title:A"]) == (None, "redirect_loop")
    assert t.resolve(["title:Nowhere"]) == (None, "dangling")
    assert t.resolve([]) == (None, "dangling")


def test_long_redirect_chains_stop():
    t = LinkTable()
    t.add_document(["end"], 0)
    for i in range(MAX_REDIRECT_HOPS + 3):
        t.add_redirect(f"r{i}", f"r{i + 1}" if i < MAX_REDIRECT_HOPS + 2 else "end")
    assert t.resolve([f"r{MAX_REDIRECT_HOPS + 2}"]) == (0, "redirect")
    assert t.resolve(["r0"]) == (None, "redirect_loop")
