# SPDX-License-Identifier: MIT
# Checks that a fenced code block of README.md is, byte for byte, a source file of the repository.
#   cmake -DREADME=README.md -DSOURCE_DIR=<repo> -DFILE=examples/quickstart.cpp -P readme_snippet.cmake
# The block sits between the lines `<!-- begin FILE -->` and `<!-- end FILE -->`, inside a ``` fence.
# With -DUPDATE=ON the README block is rewritten from the file instead.
foreach(var README SOURCE_DIR FILE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "readme_snippet.cmake: ${var} is not set")
  endif()
endforeach()

file(READ "${README}" readme)
file(READ "${SOURCE_DIR}/${FILE}" source)
set(begin_marker "<!-- begin ${FILE} -->\n")
set(end_marker "<!-- end ${FILE} -->")
string(FIND "${readme}" "${begin_marker}" begin)
string(FIND "${readme}" "${end_marker}" end)
if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
  message(FATAL_ERROR "${README}: no block between '<!-- begin ${FILE} -->' and '${end_marker}'")
endif()
string(LENGTH "${begin_marker}" marker_length)
math(EXPR body_begin "${begin} + ${marker_length}")
math(EXPR body_length "${end} - ${body_begin}")
string(SUBSTRING "${readme}" ${body_begin} ${body_length} block)

# The block is "```<lang>\n<file contents>```\n".
string(FIND "${block}" "\n" first_newline)
math(EXPR code_begin "${first_newline} + 1")
string(SUBSTRING "${block}" 0 ${first_newline} opening_fence)
string(SUBSTRING "${block}" ${code_begin} -1 rest)
set(closing_fence "```\n")
string(LENGTH "${rest}" rest_length)
string(LENGTH "${closing_fence}" closing_length)
if(NOT opening_fence MATCHES "^```" OR rest_length LESS closing_length)
  message(FATAL_ERROR "${README}: the block for ${FILE} must be a ``` fenced code block")
endif()
math(EXPR code_length "${rest_length} - ${closing_length}")
string(SUBSTRING "${rest}" ${code_length} -1 tail)
string(SUBSTRING "${rest}" 0 ${code_length} code)
if(NOT tail STREQUAL closing_fence)
  message(FATAL_ERROR "${README}: the block for ${FILE} must end with a ``` line right before '${end_marker}'")
endif()

if(code STREQUAL source)
  message(STATUS "${README}: the block for ${FILE} is the file, verbatim")
elseif(UPDATE)
  string(SUBSTRING "${readme}" 0 ${body_begin} head)
  string(SUBSTRING "${readme}" ${end} -1 foot)
  file(WRITE "${README}" "${head}${opening_fence}\n${source}${closing_fence}${foot}")
  message(STATUS "${README}: rewrote the block for ${FILE} from the file")
else()
  message(FATAL_ERROR "${README}: the block for ${FILE} differs from the file; copy the file into the "
                      "README (or run: cmake -DREADME=${README} -DSOURCE_DIR=${SOURCE_DIR} -DFILE=${FILE} "
                      "-DUPDATE=ON -P ${CMAKE_CURRENT_LIST_FILE})")
endif()
