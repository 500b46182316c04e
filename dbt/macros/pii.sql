{#- "Jane Q. Doe" -> "J*** Q*** D***": each word's initial, so a case can be talked about
    without the name being readable. -#}
{% macro mask_name(col) -%}
    arrayStringConcat(arrayMap(w -> concat(substring(w, 1, 1), '***'), splitByWhitespace({{ col }})), ' ')
{%- endmacro %}
