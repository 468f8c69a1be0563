#!/usr/bin/python3
"""Checks the internal links of the built documentation site, as a browser
rendered it.

    docs_links.py SITE_DIR DOM_DIR

SITE_DIR is the output of `mkdocs build`; DOM_DIR holds, for every page
SITE_DIR/x/y.html, the DOM that headless chromium rendered for it
(tools/docs_render.py) as DOM_DIR/x/y.html.  Every href and src that stays inside
the site must name a file of SITE_DIR, and every fragment (#x or page#x) an
element id of the target page's rendered DOM.  Prints each broken link and
exits 1 if there is any, 0 otherwise.
"""

import os
import posixpath
import sys
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []     # (attribute, value)

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)
            if (name == "href" and tag in ("a", "link")) or \
                    (name == "src" and tag in ("img", "script")):
                self.links.append((tag, name, value))


def parse(path):
    page = Page()
    with open(path, encoding="utf-8", errors="replace") as f:
        page.feed(f.read())
    return page


def main():
    site, doms = sys.argv[1], sys.argv[2]
    pages = {}
    for root, _, files in os.walk(doms):
        for name in files:
            if name.endswith(".html"):
                rel = os.path.relpath(os.path.join(root, name), doms)
                pages[rel.replace(os.sep, "/")] = parse(os.path.join(root, name))
    if not pages:
        print("docs_links: no rendered pages in %s" % doms)
        return 1
    broken = []
    checked = 0
    for rel, page in sorted(pages.items()):
        for tag, attr, value in page.links:
            url = urlsplit(value)
            if url.scheme or url.netloc or value.startswith("//"):
                continue        # external: not ours to check here
            if value.startswith(("mailto:", "javascript:", "data:")):
                continue
            checked += 1
            path = unquote(url.path)
            if path:
                # An absolute path is relative to the site's root (mkdocs
                # writes them in 404.html).
                base = "" if path.startswith("/") else posixpath.dirname(rel)
                target = posixpath.normpath(
                    posixpath.join(base, path.lstrip("/")))
                if path.endswith("/") or os.path.isdir(os.path.join(site, target)):
                    target = posixpath.join(target, "index.html")
            else:
                target = rel
            if target.startswith("../") or \
                    not os.path.isfile(os.path.join(site, target)):
                broken.append("%s: %s=%r: no such file %s" % (rel, attr, value, target))
                continue
            if url.fragment:
                ids = pages.get(target)
                if ids is None:
                    if target.endswith(".html"):
                        broken.append("%s: %r: page %s was not rendered" % (rel, value, target))
                    continue
                if unquote(url.fragment) not in ids.ids:
                    broken.append("%s: %s=%r: no element with id %r in %s"
                                  % (rel, attr, value, unquote(url.fragment), target))
    for b in broken:
        print("broken link: " + b)
    print("docs_links: %d pages, %d internal links, %d broken"
          % (len(pages), checked, len(broken)))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
