std = "lua54"
max_line_length = 110
files["spec/"] = { std = "+busted", max_line_length = 135 } -- byte vectors read better unwrapped
exclude_files = { "build*/**" }
files["lua/termsrv/helpdata.lua"] = { max_line_length = false } -- generated: one line per function
