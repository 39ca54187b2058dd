// The page served at "/": one self-contained HTML document (inline CSS and
// script, no external assets, no build step) that asks /v1/ask with
// "stream": true, shows the answer as its pieces arrive, then the sources
// with their retrieval score and a bar for their share of the decoder's
// cross-attention. "/?q=QUESTION&mode=MODE&k=K&retriever=R" asks on load,
// which is how the headless-browser test drives it; when an answer is
// complete the body carries data-state="done" (or "error").
#pragma once

#include <string>

namespace kvrag::server {

const std::string& web_page_html();

}  // namespace kvrag::server
