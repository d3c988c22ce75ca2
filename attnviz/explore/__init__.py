"""`attnviz explore`: the interactive terminal explorer (Textual).

The model loads once; then sentences, heads, views and the focus token change at keyboard speed.
Textual is imported by this package only, and this package only by the `explore` command, so
`attnviz --help` never pays for it.

Modules, from the bottom up:
  session   what is on screen, as AttentionResult objects (no Textual, no maths of its own)
  history   the sentences typed, kept across runs in the user's state directory
  cells     rich Text for the heatmap, the head strip and the token bar (colours as `show`)
  summary   the focus summary: top targets, candidates, pronoun heads
  saving    `e`: the current head as PNG and the sentence as HTML, never overwriting
  widgets   the Textual widgets; app  the App, its keys and its workers
"""
