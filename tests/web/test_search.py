"""web.search: the search box and page: results newest first, paged, highlighted safely."""

from __future__ import annotations

import re

from todoscale.web.search import excerpt, highlight


def test_the_search_box_is_on_every_page_with_a_label(ann):
    page = ann.text("/")
    assert '<form class="search-box" role="search"' in page
    assert '<label for="search-q" class="visually-hidden">Search todos</label>' in page
    assert 'maxlength="200"' in page


def test_results_highlight_the_words_and_never_inject_html(ann, ben):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "<script>alert('milk')</script> Buy MILK", notes="<b>oat</b> milk, 2 l")
    ann.add_todo(inbox, "Buy bread")
    ben.add_todo(ben.inbox_id(), "Ben's milk")
    page = ann.text("/search?q=milk")
    assert (
        "&lt;script&gt;alert(&#39;<mark>milk</mark>&#39;)&lt;/script&gt; Buy <mark>MILK</mark>"
        in page
    )
    assert "&lt;b&gt;oat&lt;/b&gt; <mark>milk</mark>, 2 l" in page
    assert "<script>alert" not in page and "Ben&#39;s" not in page and "bread" not in page
    assert "Results for “milk”" in page
    assert 'value="milk"' in page  # the box keeps the query


def test_results_are_paged_newest_first_with_links_both_ways(ann):
    inbox = ann.inbox_id()
    for n in range(12):
        ann.add_todo(inbox, f"Invoice {n:02d}")
    first = ann.text("/search?q=invoice")
    titles = re.findall(r"Invoice (\d\d)", first)
    assert titles == [f"{n:02d}" for n in range(11, 1, -1)]
    assert 'rel="prev"' not in first
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = ann.text(older)
    assert re.findall(r"Invoice (\d\d)", second) == ["01", "00"]
    newer = re.search(r'rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    assert re.findall(r"Invoice (\d\d)", ann.text(newer)) == titles


def test_a_query_without_words_says_so_and_an_empty_one_shows_the_form(ann):
    response = ann.get("/search?q=%21%21%21")
    assert response.status_code == 400
    assert "Type at least one word, with letters or digits, to search for." in response.get_data(
        as_text=True
    )
    page = ann.text("/search")
    assert 'id="search-page-q"' in page and "Results for" not in page
    assert ann.get("/search?q=" + "x" * 201).status_code == 400


def test_the_page_speaks_chinese_and_finds_chinese_words(ann):
    ann.post("/profile/language", {"locale": "zh_Hans"})
    ann.add_todo(ann.inbox_id(), "买 牛奶", notes="超市 周六")
    page = ann.text("/search?q=牛奶")
    assert "买 <mark>牛奶</mark>" in page
    assert "“牛奶”的搜索结果" in page
    assert "<mark>周六</mark>" in ann.text("/search?q=周六")
    assert "没有待办同时包含这些词。" in ann.text("/search?q=面包")


def test_with_encrypted_notes_the_page_says_search_covers_titles_only(ann, encrypted_notes):
    ann.add_todo(ann.inbox_id(), "Visit", notes="the quokka")
    page = ann.text("/search?q=quokka")
    assert "Notes are encrypted, so search looks at titles only" in page
    assert "No todo contains all of these words." in page


def test_highlight_escapes_everything_but_its_marks():
    assert str(highlight("a <i>Tea</i> & tea-time", ["tea"])) == (
        "a &lt;i&gt;<mark>Tea</mark>&lt;/i&gt; &amp; <mark>tea</mark>-time"
    )
    assert str(highlight("steam", ["tea"])) == "steam"  # whole words, as the index matches
    assert str(highlight("<x>", [])) == "&lt;x&gt;"


def test_long_notes_are_cut_around_the_first_match():
    notes = "word " * 100 + "needle " + "word " * 100
    cut = excerpt(notes, ["needle"])
    assert "needle" in cut and cut.startswith("…") and cut.endswith("…") and len(cut) < 260
    assert excerpt("short", ["x"]) == "short"
