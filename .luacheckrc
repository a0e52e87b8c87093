std = "lua54"
max_line_length = 110
files["spec/"] = { std = "+busted", max_line_length = 135 } -- byte vectors read better unwrapped
exclude_files = { "build*/**" }
