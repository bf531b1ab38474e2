"""Block Kit's vocabulary: which block and element types exist and which keys each may carry."""

from __future__ import annotations

TEXT_TYPES = ("plain_text", "mrkdwn")
CONFIRM_KEYS = {"title", "text", "confirm", "deny", "style"}
COMMON_ELEMENT = {"type", "action_id", "confirm", "focus_on_load"}
SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
}
MULTI_SELECTS = {"multi_" + s for s in SELECTS}
INPUTS = (
    {
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_text_input",
        "rich_text_input",
        "file_input",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
    }
    | SELECTS
    | MULTI_SELECTS
)
INTERACTIVE = INPUTS | {"button", "overflow", "workflow_button"}
ELEMENT_KEYS: dict[str, set[str]] = {
    "button": {"text", "value", "url", "style", "accessibility_label"},
    "workflow_button": {"text", "workflow", "style", "accessibility_label"},
    "overflow": {"options"},
    "checkboxes": {"options", "initial_options"},
    "radio_buttons": {"options", "initial_option"},
    "datepicker": {"placeholder", "initial_date"},
    "timepicker": {"placeholder", "initial_time", "timezone"},
    "datetimepicker": {"initial_date_time"},
    "plain_text_input": {
        "placeholder",
        "initial_value",
        "multiline",
        "min_length",
        "max_length",
        "dispatch_action_config",
    },
    "email_text_input": {"placeholder", "initial_value", "dispatch_action_config"},
    "url_text_input": {"placeholder", "initial_value", "dispatch_action_config"},
    "number_text_input": {
        "placeholder",
        "initial_value",
        "is_decimal_allowed",
        "min_value",
        "max_value",
        "dispatch_action_config",
    },
    "rich_text_input": {"placeholder", "initial_value", "dispatch_action_config"},
    "file_input": {"filetypes", "max_files"},
    "image": {"image_url", "alt_text", "slack_file"},
}
SELECT_EXTRA = {
    "placeholder",
    "options",
    "option_groups",
    "initial_option",
    "initial_options",
    "min_query_length",
    "initial_user",
    "initial_users",
    "initial_conversation",
    "initial_conversations",
    "initial_channel",
    "initial_channels",
    "default_to_current_conversation",
    "filter",
    "response_url_enabled",
    "max_selected_items",
}
BLOCK_KEYS: dict[str, set[str]] = {
    "section": {"text", "fields", "accessory", "expand"},
    "divider": set(),
    "header": {"text"},
    "actions": {"elements"},
    "context": {"elements"},
    "input": {"label", "element", "dispatch_action", "hint", "optional"},
    "image": {"image_url", "alt_text", "title", "slack_file"},
    "markdown": {"text"},
    "rich_text": {"elements"},
    "file": {"external_id", "source"},
    "video": {
        "alt_text",
        "author_name",
        "description",
        "provider_icon_url",
        "provider_name",
        "title",
        "title_url",
        "thumbnail_url",
        "video_url",
    },
    "call": {"call_id"},
}
VIEW_KEYS = {
    "type",
    "title",
    "blocks",
    "close",
    "submit",
    "private_metadata",
    "callback_id",
    "clear_on_close",
    "notify_on_close",
    "external_id",
    "submit_disabled",
}
